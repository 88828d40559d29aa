"""The repository's interactions on both databases."""

from __future__ import annotations

import orjson
import pytest

from gateway.errors import Gone, InvalidResource, NotFound, PreconditionFailed
from gateway.store.records import Outcome
from gateway.store.repository import SqlFhirRepository

NHS = "https://fhir.nhs.uk/Id/nhs-number"


def patient(nhs: str = "9000000009", family: str = "Smith") -> dict[str, object]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": family, "given": ["Alex"]}],
        "birthDate": "2012-04-01",
    }


async def test_create_then_read_returns_the_stored_bytes(repo: SqlFhirRepository) -> None:
    created = await repo.create(patient())
    assert created.outcome is Outcome.CREATED and created.resource is not None
    read = await repo.read("Patient", created.resource.res_id)
    doc = orjson.loads(read.content or b"")
    assert doc["meta"]["versionId"] == "1"
    assert doc["name"][0]["family"] == "Smith"
    assert read.etag == 'W/"1"'


async def test_update_keeps_every_version(repo: SqlFhirRepository) -> None:
    created = await repo.create(patient())
    assert created.resource
    rid = created.resource.res_id
    body = {**patient(family="Jones"), "id": rid}
    second = await repo.update("Patient", rid, body, if_match=1)
    assert second.outcome is Outcome.UPDATED and second.resource and second.resource.version_id == 2
    v1 = await repo.vread("Patient", rid, 1)
    assert orjson.loads(v1.content or b"")["name"][0]["family"] == "Smith"
    history = await repo.history("Patient", rid)
    assert [e.version_id for e in history.entries] == [2, 1]


async def test_stale_if_match_is_refused_and_changes_nothing(repo: SqlFhirRepository) -> None:
    created = await repo.create(patient())
    assert created.resource
    rid = created.resource.res_id
    await repo.update("Patient", rid, {**patient(family="Jones"), "id": rid}, if_match=1)
    with pytest.raises(PreconditionFailed):
        await repo.update("Patient", rid, {**patient(family="Brown"), "id": rid}, if_match=1)
    current = await repo.read("Patient", rid)
    assert current.version_id == 2
    assert orjson.loads(current.content or b"")["name"][0]["family"] == "Jones"


async def test_update_with_client_id_creates(repo: SqlFhirRepository) -> None:
    result = await repo.update("Patient", "yp-1", {**patient(), "id": "yp-1"})
    assert result.outcome is Outcome.CREATED
    assert (await repo.read("Patient", "yp-1")).version_id == 1


async def test_delete_then_read_is_gone_and_history_shows_it(repo: SqlFhirRepository) -> None:
    await repo.update("Patient", "yp-2", {**patient(), "id": "yp-2"})
    deleted = await repo.delete("Patient", "yp-2")
    assert deleted.outcome is Outcome.DELETED
    with pytest.raises(Gone):
        await repo.read("Patient", "yp-2")
    again = await repo.delete("Patient", "yp-2")
    assert again.outcome is Outcome.NOTHING
    history = await repo.history("Patient", "yp-2")
    assert [e.method for e in history.entries] == ["delete", "create"]
    with pytest.raises(NotFound):
        await repo.read("Patient", "never-was")


async def test_invalid_resource_is_refused_with_paths_and_nothing_stored(repo: SqlFhirRepository) -> None:
    bad = {**patient(), "birthDate": "2012-13-45", "name": [{"given": "Alex"}]}
    with pytest.raises(InvalidResource) as info:
        await repo.update("Patient", "bad-1", {**bad, "id": "bad-1"})
    paths = {p for issue in info.value.issues for p in issue.expression}
    assert paths == {"Patient.birthDate", "Patient.name[0].given"}
    with pytest.raises(NotFound):
        await repo.read("Patient", "bad-1")


async def test_conditional_create_finds_existing(repo: SqlFhirRepository) -> None:
    first = await repo.create(patient(nhs="9000000017"), if_none_exist=[("identifier", f"{NHS}|9000000017")])
    second = await repo.create(patient(nhs="9000000017"), if_none_exist=[("identifier", f"{NHS}|9000000017")])
    assert first.outcome is Outcome.CREATED and second.outcome is Outcome.UNCHANGED
    assert first.resource and second.resource and first.resource.res_id == second.resource.res_id


async def test_transaction_scope_is_all_or_nothing(repo: SqlFhirRepository) -> None:
    with pytest.raises(InvalidResource):
        async with repo.transaction() as tx:
            await tx.update("Patient", "tx-1", {**patient(), "id": "tx-1"})
            await tx.update("Patient", "tx-2", {**patient(), "id": "tx-2", "gender": 7})
    with pytest.raises(NotFound):
        await repo.read("Patient", "tx-1")
