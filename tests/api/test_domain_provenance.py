"""Every domain API write by a client carries a Provenance: the client and its organisation, CREATE or UPDATE, and
the versions the write made (deletions included), written in the same batch as the record (on both databases).

Provenances are read from the store (``Provenance?target=`` through the repository), so these tests check what was
written, whatever the access rules let one client search.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest

from gateway.audit.events import CLIENT_SYSTEM
from gateway.domain.service import KeyworkingRecords
from gateway.errors import Conflict, PreconditionFailed
from gateway.store.records import WriteResult
from gateway.store.repository import SqlFhirRepository
from gateway.validation import validate_resource
from mappings.keyworking import lifecycle
from mappings.keyworking.records import Person, RatingChange, RegisterEntry
from mappings.provenance import Author, Origin
from tests.api.test_access_matrix import ICB, TRUST, act_as, seed
from tests.api.test_domain_api import API, KW1, KW2, record

PERSON = "yp-prov"


async def provenances(repo: SqlFhirRepository, target: str) -> list[dict[str, Any]]:
    """The Provenances naming ``target`` (any version of it), oldest first."""
    result = await repo.search("Provenance", [("target", target), ("_sort", "_lastUpdated")])
    return [orjson.loads(r.content or b"{}") for r in result.matches]


def targets(provenance: dict[str, Any]) -> set[str]:
    return {t["reference"] for t in provenance["target"]}


def agent(provenance: dict[str, Any]) -> tuple[str, str]:
    [author] = provenance["agent"]
    return author["who"]["identifier"]["value"], author["onBehalfOf"]["identifier"]["value"]


def activity(provenance: dict[str, Any]) -> str:
    return str(provenance["activity"]["coding"][0]["code"])


async def current(repo: SqlFhirRepository, reference: str) -> str:
    """``Type/id/_history/n`` of the stored version now."""
    res_type, res_id = reference.split("/")
    stored = await repo.read(res_type, res_id)
    return f"{res_type}/{res_id}/_history/{stored.version_id}"


async def versions_of(repo: SqlFhirRepository, res_type: str, res_id: str) -> int:
    return (await repo.history(res_type, res_id)).total


def person(**changes: Any) -> dict[str, Any]:
    body = {**record("person"), "id": PERSON, "nhs_number": "999 000 0026", "upn": None, "la_child_id": None}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


async def test_a_created_record_names_the_client_and_every_resource_it_wrote(
    client: httpx.AsyncClient, repo: SqlFhirRepository
) -> None:
    act_as(client, ICB)
    created = await client.put(f"{API}/people/{PERSON}", json=person())
    assert created.status_code == 201, created.text
    [provenance] = await provenances(repo, f"Patient/{PERSON}")
    assert agent(provenance) == ("icb-register", "QX9")
    assert activity(provenance) == "CREATE"
    assert provenance["reason"][0]["coding"][0]["code"] == "HOPERAT"  # ICB's purpose: ADMINISTRATION
    conditions = (await repo.search("Condition", [("subject", f"Patient/{PERSON}")])).matches
    assert len(conditions) == 2
    assert targets(provenance) == {f"Patient/{PERSON}/_history/1"} | {
        f"Condition/{c.res_id}/_history/1" for c in conditions
    }
    # Written in the record's own batch: one statement plan, one timestamp for all of it.
    patient = orjson.loads((await repo.read("Patient", PERSON)).content or b"{}")
    assert provenance["meta"]["lastUpdated"] == patient["meta"]["lastUpdated"]
    assert provenance["meta"]["versionId"] == "1"


async def test_a_replacement_names_what_changed_and_what_it_deleted(
    client: httpx.AsyncClient, repo: SqlFhirRepository
) -> None:
    act_as(client, ICB)
    assert (await client.put(f"{API}/people/{PERSON}", json=person())).status_code == 201
    [autism, disability] = sorted(
        c.res_id for c in (await repo.search("Condition", [("subject", f"Patient/{PERSON}")])).matches
    )
    one_less = person(diagnoses=[record("person")["diagnoses"][0]], postcode="LS7 1AA")
    assert (await client.put(f"{API}/people/{PERSON}", json=one_less)).status_code == 200
    first, second = await provenances(repo, f"Patient/{PERSON}")
    assert activity(first) == "CREATE" and activity(second) == "UPDATE"
    dropped = disability if "autism" in autism else autism
    assert targets(second) == {f"Patient/{PERSON}/_history/2", f"Condition/{dropped}/_history/2"}  # 2: its deletion
    # The diagnosis made again takes back its id at version 3: the Provenance says 3, first time (no correction).
    assert (await client.put(f"{API}/people/{PERSON}", json=person(postcode="LS7 1AA"))).status_code == 200
    third = (await provenances(repo, f"Patient/{PERSON}"))[-1]
    assert targets(third) == {f"Patient/{PERSON}/_history/3", f"Condition/{dropped}/_history/3"}
    assert third["meta"]["versionId"] == "1"


async def test_a_record_made_again_after_a_fhir_delete_names_its_true_versions(
    client: httpx.AsyncClient, repo: SqlFhirRepository
) -> None:
    """The versions are expected before the write; when an id was deleted earlier the batch makes others, and the
    Provenance is put right to name those."""
    act_as(client, ICB)
    assert (await client.put(f"{API}/people/{PERSON}", json=person(diagnoses=[]))).status_code == 201
    assert (await client.delete(f"/fhir/Patient/{PERSON}")).status_code in (200, 204)
    again = await client.put(f"{API}/people/{PERSON}", json=person(diagnoses=[]))
    assert again.status_code == 201, again.text
    assert again.headers["etag"] == 'W/"3"'
    latest = (await provenances(repo, f"Patient/{PERSON}"))[-1]
    assert targets(latest) == {f"Patient/{PERSON}/_history/3"}
    assert activity(latest) == "CREATE"


async def test_lifecycle_moves_ratings_and_handovers_carry_provenance(
    client: httpx.AsyncClient, repo: SqlFhirRepository
) -> None:
    await seed(client)  # Amira and her care team, as the development caller: no Provenance
    assert await provenances(repo, "Patient/yp-amira-khan") == []
    act_as(client, TRUST)
    # A register entry and a rating decision: the rules run in the same transaction (red: a C(E)TR offer Task).
    entry = {**record("register-entry"), "ratings": []}
    assert (await client.put(f"{API}/register-entries/{entry['id']}", json=entry)).status_code == 201
    change = {
        "rating": "red",
        "reason": "Crisis at home.",
        "author": {"name": "Dr Priya Shah", "reference": "Practitioner/priya-shah"},
        "at": "2025-06-02T09:00:00+01:00",
        "next_review": "2025-06-09",
    }
    rated = await client.post(f"{API}/register-entries/{entry['id']}/ratings", json=change)
    assert rated.status_code == 200, rated.text
    rating = (await provenances(repo, f"EpisodeOfCare/{entry['id']}"))[-1]
    assert agent(rating) == ("trust-ehr", "RX4") and activity(rating) == "UPDATE"
    flag = f"Flag/{entry['id']}-rating"
    assert await current(repo, flag) in targets(rating)
    assert await current(repo, f"EpisodeOfCare/{entry['id']}") in targets(rating)
    assert any(t.startswith("Observation/") and t.endswith("/_history/1") for t in targets(rating))
    # A case: referral (create), allocation (a read-modify-write guarded by the case's version).
    referred = await client.post(
        f"{API}/cases",
        json={"person_id": "yp-amira-khan", "service_model": "nhs-ld-autism", "referred_on": "2025-02-03"},
    )
    case_id = referred.json()["id"]
    allocated = await client.post(f"{API}/cases/{case_id}/allocation", json={"keyworkers": [KW1], "on": "2025-02-10"})
    assert allocated.status_code == 200, allocated.text
    made, moved = await provenances(repo, f"EpisodeOfCare/{case_id}")
    assert targets(made) == {f"EpisodeOfCare/{case_id}/_history/1"} and activity(made) == "CREATE"
    assert targets(moved) == {f"EpisodeOfCare/{case_id}/_history/2"} and activity(moved) == "UPDATE"
    # A keyworker change writes the case and its team together: one Provenance for each record.
    linked = await client.put(f"{API}/cases/{case_id}", json={**allocated.json(), "care_team_id": "team-amira"})
    assert linked.status_code == 200, linked.text
    handover = {"outgoing": KW1, "incoming": KW2, "on": "2025-03-03", "reason": "staff-left-or-absent"}
    changed = await client.post(f"{API}/cases/{case_id}/keyworker-change", json=handover)
    assert changed.status_code == 200, changed.text
    assert (await provenances(repo, f"EpisodeOfCare/{case_id}"))[-1]["target"] == [
        {"reference": await current(repo, f"EpisodeOfCare/{case_id}")}
    ]
    team_provenance = (await provenances(repo, "CareTeam/team-amira"))[-1]
    assert targets(team_provenance) == {await current(repo, "CareTeam/team-amira")}
    assert activity(team_provenance) == "UPDATE"


async def test_refused_writes_and_replays_leave_no_provenance(
    client: httpx.AsyncClient, repo: SqlFhirRepository
) -> None:
    act_as(client, ICB)
    key = {"Idempotency-Key": "prov-once"}
    body = {k: v for k, v in person().items() if k != "id"}
    first = await client.post(f"{API}/people", json=body, headers=key)
    assert first.status_code == 201, first.text
    pid = first.json()["id"]
    replayed = await client.post(f"{API}/people", json=body, headers=key)
    assert replayed.headers.get("idempotent-replayed") == "true"
    assert len(await provenances(repo, f"Patient/{pid}")) == 1
    # A stale If-Match (412) and an impossible move (409) write nothing, Provenance included.
    stale = await client.put(
        f"{API}/people/{pid}", json={**first.json(), "postcode": "LS1 1AA"}, headers={"If-Match": 'W/"7"'}
    )
    assert stale.status_code == 412
    referred = await client.post(
        f"{API}/cases", json={"person_id": pid, "service_model": "nhs-ld-autism", "referred_on": "2025-02-03"}
    )
    case_id = referred.json()["id"]
    refused = await client.post(f"{API}/cases/{case_id}/step-down", json={"on": "2025-03-01"})
    assert refused.status_code == 409
    assert len(await provenances(repo, f"Patient/{pid}")) == 1
    assert len(await provenances(repo, f"EpisodeOfCare/{case_id}")) == 1  # the referral only
    # The right If-Match writes, attributed.
    fresh = await client.put(
        f"{API}/people/{pid}", json={**first.json(), "postcode": "LS1 1AA"}, headers={"If-Match": 'W/"1"'}
    )
    assert fresh.status_code == 200, fresh.text
    assert targets((await provenances(repo, f"Patient/{pid}"))[-1]) == {f"Patient/{pid}/_history/2"}


async def test_the_development_caller_writes_none(client: httpx.AsyncClient, repo: SqlFhirRepository) -> None:
    """As on the FHIR API: with authentication off there is no client to name."""
    assert (await client.put(f"{API}/people/{PERSON}", json=person())).status_code == 201
    assert await provenances(repo, f"Patient/{PERSON}") == []


# -- races: another writer between the record's read and its write (the service over a repository that races) ------


class RacingRepository(SqlFhirRepository):
    """The test's repository, where another writer changes ``racer`` just before the next write begins (its
    transaction scope, or its batch when it has none), committed: a rollback of the write does not undo it."""

    racer: tuple[str, str] | None = None

    async def _race(self) -> None:
        if self.racer is not None:
            res_type, res_id = self.racer
            self.racer = None
            stored = orjson.loads((await self.read(res_type, res_id)).content or b"{}")
            await self.update(res_type, res_id, {k: v for k, v in stored.items() if k != "meta"})

    @asynccontextmanager
    async def transaction(self, *, savepoints: bool = True) -> AsyncIterator[SqlFhirRepository]:
        await self._race()
        async with super().transaction(savepoints=savepoints) as tx:
            yield tx

    async def update_many(self, items: Sequence[tuple[dict[str, Any], str]]) -> list[WriteResult]:
        await self._race()
        return await super().update_many(items)


ORIGIN = Origin(Author(CLIENT_SYSTEM, "racing-client", organisation="RX4"))


@pytest.fixture
def racing(repo: SqlFhirRepository) -> RacingRepository:
    return RacingRepository(repo.engine, validator=validate_resource, conn=repo.bound_connection)


async def stored_person(service: KeyworkingRecords) -> Person:
    await service.put(Person.model_validate(person(diagnoses=[])))
    return await service.get(Person, PERSON)


async def test_a_race_with_a_guarded_write_is_412_and_writes_no_provenance(racing: RacingRepository) -> None:
    service = KeyworkingRecords(racing, origin=ORIGIN)
    stored = await stored_person(service)
    racing.racer = ("Patient", PERSON)
    with pytest.raises(PreconditionFailed):
        await service.put(stored.model_copy(update={"postcode": "LS1 1AA"}), if_match=1)
    assert [targets(p) for p in await provenances(racing, f"Patient/{PERSON}")] == [{f"Patient/{PERSON}/_history/1"}]


async def test_a_race_with_a_change_is_409(racing: RacingRepository) -> None:
    service = KeyworkingRecords(racing, origin=ORIGIN)
    await stored_person(service)
    racing.racer = ("Patient", PERSON)
    with pytest.raises(Conflict):
        await service.change(Person, PERSON, lambda p: p.model_copy(update={"postcode": "LS1 1AA"}))
    assert len(await provenances(racing, f"Patient/{PERSON}")) == 1


async def test_a_race_with_a_plain_put_is_named_at_the_versions_written(racing: RacingRepository) -> None:
    service = KeyworkingRecords(racing, origin=ORIGIN)
    stored = await stored_person(service)
    racing.racer = ("Patient", PERSON)
    saved = await service.put(stored.model_copy(update={"postcode": "LS1 1AA"}))  # last writer wins: version 3
    assert saved.version == 3
    latest = (await provenances(racing, f"Patient/{PERSON}"))[-1]
    assert targets(latest) == {f"Patient/{PERSON}/_history/3"}


async def test_a_race_on_a_resource_beside_the_main_one_is_written_again_naming_the_right_versions(
    racing: RacingRepository,
) -> None:
    """The rating's Flag moves on under the write (the main resource's guard holds): the scope rolls back and the
    write runs again, so the one Provenance names the Flag version really written."""
    service = KeyworkingRecords(racing, origin=ORIGIN)
    await stored_person(service)
    entry = RegisterEntry.model_validate({**record("register-entry"), "person_id": PERSON, "id": "dsr-race"})
    await service.put(entry)
    flag = ("Flag", "dsr-race-rating")
    racing.racer = flag
    rating = RatingChange.model_validate(
        {
            "rating": "green",
            "reason": "Settled.",
            "author": {"name": "Dr Priya Shah"},
            "at": "2025-03-01T09:00:00+00:00",
            "next_review": "2025-06-01",
        }
    )
    await service.change(RegisterEntry, "dsr-race", lambda e: lifecycle.rate(e, rating))
    latest = (await provenances(racing, "EpisodeOfCare/dsr-race"))[-1]
    assert await current(racing, "Flag/dsr-race-rating") in targets(latest)
    assert (await racing.read("Flag", "dsr-race-rating")).version_id == 3  # created, raced, rated
    assert latest["meta"]["versionId"] == "1"


async def test_a_recommendation_status_update_carries_provenance(
    client: httpx.AsyncClient, repo: SqlFhirRepository
) -> None:
    await seed(client)
    meeting = record("review-meeting")
    assert (await client.put(f"{API}/reviews/{meeting['id']}", json=meeting)).status_code == 201
    index = next(i for i, r in enumerate(meeting["recommendations"]) if "status" not in r)
    rec_id = meeting["recommendations"][index].get("id") or f"{meeting['id']}-rec-{index + 1}"
    act_as(client, TRUST)
    updated = await client.patch(f"{API}/recommendations/{rec_id}", json={"status": "accepted"})
    assert updated.status_code == 200, updated.text
    [made] = await provenances(repo, f"Task/{rec_id}")
    assert agent(made) == ("trust-ehr", "RX4") and activity(made) == "UPDATE"
    assert targets(made) == {await current(repo, f"Task/{rec_id}")}
