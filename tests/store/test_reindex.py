"""Reindex rebuilds exactly the index rows a write makes, from the stored bytes, without touching versions."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.models import INDEX_TABLES, outbox, resource, sp_token
from gateway.store.reindex import reindex
from gateway.store.repository import SqlFhirRepository


async def _index_snapshot(engine: AsyncEngine, pks: list[int]) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    async with engine.connect() as conn:
        for table in INDEX_TABLES:
            found = await conn.execute(select(table).where(table.c.res_pk.in_(pks)))
            rows += sorted((table.name, *map(str, r)) for r in found.all())
    return rows


async def test_reindex_restores_a_lost_index(engine: AsyncEngine) -> None:
    repo = SqlFhirRepository(engine)
    tag = uuid.uuid4().hex
    made = []
    for n in range(3):
        created = await repo.create(
            {
                "resourceType": "Patient",
                "identifier": [{"system": "urn:test:reindex", "value": f"{tag}-{n}"}],
                "name": [{"family": f"Reindex{n}"}],
                "birthDate": "2010-01-0" + str(n + 1),
            }
        )
        assert created.resource is not None
        made.append(created.resource.res_id)
    async with engine.connect() as conn:
        pks = list((await conn.execute(select(resource.c.pk).where(resource.c.res_id.in_(made)))).scalars())
        outbox_before = (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
    before = await _index_snapshot(engine, pks)
    async with engine.begin() as conn:  # the index goes stale (as after a registry change)
        await conn.execute(delete(sp_token).where(sp_token.c.res_pk.in_(pks)))
    assert (await repo.search("Patient", [("identifier", f"urn:test:reindex|{tag}-1")])).matches == []

    report = await reindex(engine, ["Patient"], batch=2)

    assert report.resources >= 3
    assert await _index_snapshot(engine, pks) == before
    found = await repo.search("Patient", [("identifier", f"urn:test:reindex|{tag}-1")])
    assert [r.res_id for r in found.matches] == [made[1]]
    assert (await repo.read("Patient", made[1])).version_id == 1  # versions untouched
    async with engine.connect() as conn:  # nothing changed, so nothing to deliver
        assert (await conn.execute(select(func.count()).select_from(outbox))).scalar_one() == outbox_before
    again = await reindex(engine, ["Patient"])  # repeatable
    assert await _index_snapshot(engine, pks) == before and again.resources == report.resources
    async with repo.transaction() as tx:
        for rid in made:
            await tx.delete("Patient", rid)
