"""The batched create path (large transaction Bundles) writes exactly what one-by-one creates write."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import InvalidRequest, PreconditionFailed
from gateway.store.models import INDEX_TABLES, outbox, resource, resource_version
from gateway.store.records import Outcome
from gateway.store.repository import SqlFhirRepository
from gateway.validation import validate_resource

NHS = "https://fhir.nhs.uk/Id/nhs-number"


def encounter() -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "meta": {"profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Encounter"]},
        "identifier": [{"system": "https://example.org/visits", "value": "v-1"}],
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
        "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "185389009"}], "text": "Follow-up"}],
        "subject": {"reference": "Patient/p-1"},
        "episodeOfCare": [{"reference": "EpisodeOfCare/e-1"}],
        "participant": [{"individual": {"reference": "https://other.example/fhir/Practitioner/kw-9"}}],
        "period": {"start": "2026-02-01T10:00:00Z", "end": "2026-02-01T11:00:00Z"},
        "location": [{"location": {"display": "Café Leeds"}}],
    }


def patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": NHS, "value": "9000000009"}],
        "name": [{"family": "Ölander", "given": ["Alex", "Sam"]}],
        "birthDate": "2012-04-01",
        "address": [{"line": ["1 High Street"], "city": "Leeds", "postalCode": "LS1 4AP"}],
    }


@pytest.fixture
async def conn(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as connection:
        await connection.execution_options(kwg_write=True)
        trans = await connection.begin()
        try:
            yield connection
        finally:
            await trans.rollback()


async def _rows(conn: AsyncConnection, res_type: str, res_id: str) -> dict[str, Any]:
    """Everything stored about one resource, with the columns that must differ between two copies left out."""
    where = (resource.c.res_type == res_type, resource.c.res_id == res_id)
    row = (await conn.execute(select(resource).where(*where))).one()
    doc = orjson.loads(row.content)
    assert doc["id"] == res_id
    del doc["id"], doc["meta"]["lastUpdated"]
    versions = (
        await conn.execute(
            select(resource_version.c.version_id, resource_version.c.method, resource_version.c.content)
            .where(resource_version.c.res_type == res_type, resource_version.c.res_id == res_id)
            .order_by(resource_version.c.version_id)
        )
    ).all()
    assert versions[-1].content == row.content
    index = {}
    for table in INDEX_TABLES:
        cols = [c for c in table.c if c.name not in ("res_pk", "id", "pk")]
        found = (await conn.execute(select(*cols).where(table.c.res_pk == row.pk))).all()
        index[table.name] = sorted(tuple(r) for r in found)
    events = (
        await conn.execute(
            select(outbox.c.res_type, outbox.c.version_id, outbox.c.method, outbox.c.patient_id)
            .where(outbox.c.res_id == res_id)
            .order_by(outbox.c.id)
        )
    ).all()
    return {
        "doc": doc,
        "key_order": list(orjson.loads(row.content)),
        "version": (row.version_id, row.deleted, [(v.version_id, v.method) for v in versions]),
        "index": index,
        "outbox": [(*e[:3], "<itself>" if e.patient_id == res_id else e.patient_id) for e in events],
    }


@pytest.mark.parametrize("make", [encounter, patient])
async def test_create_many_stores_what_create_stores(engine: AsyncEngine, conn: AsyncConnection, make: Any) -> None:
    repo = SqlFhirRepository(engine, validator=validate_resource, conn=conn)
    one = await repo.create(make(), assigned_id="one-by-one")
    many = await repo.create_many([(make(), "batched"), (make(), "batched-2")])
    assert [r.outcome for r in many] == [Outcome.CREATED, Outcome.CREATED]
    res_type = make()["resourceType"]
    single = await _rows(conn, res_type, "one-by-one")
    assert single["index"]["sp_token"]  # the comparison is about something
    assert await _rows(conn, res_type, "batched") == single
    assert await _rows(conn, res_type, "batched-2") == single
    assert one.resource is not None and many[0].resource is not None
    read = await repo.read(res_type, "batched")
    assert read.content == many[0].resource.content
    assert many[0].resource.version_id == 1


async def test_create_many_refuses_an_id_in_use_and_writes_nothing(engine: AsyncEngine, conn: AsyncConnection) -> None:
    repo = SqlFhirRepository(engine, validator=validate_resource, conn=conn)
    await repo.create(patient(), assigned_id="taken")
    with pytest.raises(PreconditionFailed):
        async with repo.transaction() as tx:
            await tx.create_many([(patient(), "free-1"), (patient(), "taken")])
    assert (await repo.search("Patient", [("_id", "free-1")])).matches == []
    with pytest.raises(InvalidRequest):
        await repo.create_many([(patient(), "not a valid id!")])


@pytest.mark.parametrize("make", [encounter, patient])
async def test_update_many_stores_what_update_stores(engine: AsyncEngine, conn: AsyncConnection, make: Any) -> None:
    repo = SqlFhirRepository(engine, validator=validate_resource, conn=conn)
    res_type = make()["resourceType"]
    changed = {**make(), "status": "cancelled"} if res_type == "Encounter" else {**make(), "gender": "female"}
    for rid in ("single", "batched", "revived"):
        await repo.create(make(), assigned_id=rid)
    await repo.delete(res_type, "revived")
    await repo.update(res_type, "single", {**changed, "id": "single"})
    await repo.update(res_type, "new-single", {**changed, "id": "new-single"})
    results = await repo.update_many(
        [({**changed, "id": "batched"}, "batched"), ({**changed, "id": "new-batched"}, "new-batched")]
    )
    assert [r.outcome for r in results] == [Outcome.UPDATED, Outcome.CREATED]
    assert [r.resource.version_id for r in results if r.resource] == [2, 1]
    single = await _rows(conn, res_type, "single")
    assert single["version"] == (2, False, [(1, "create"), (2, "update")])
    assert await _rows(conn, res_type, "batched") == single
    assert await _rows(conn, res_type, "new-batched") == await _rows(conn, res_type, "new-single")
    revived = await repo.update_many([({**changed, "id": "revived"}, "revived")])
    assert revived[0].outcome is Outcome.UPDATED and revived[0].resource and revived[0].resource.version_id == 3
    assert (await repo.read(res_type, "revived")).content == revived[0].resource.content
    found = await repo.search(res_type, [("_id", "batched,revived,single")])
    assert {r.res_id for r in found.matches} == {"batched", "revived", "single"}
