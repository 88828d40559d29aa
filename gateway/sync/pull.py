"""Pulling changes from a FHIR server by ``_lastUpdated`` cursor into the store.

For each configured type, the connector lists what changed after the saved cursor (oldest first); each resource is
stored under its own id (an update: pulling twice changes nothing, as the store keeps the same content as a new
version only when it differs) and the cursor advances to the last ``meta.lastUpdated`` seen once the page is
stored, so a crash repeats at most one page (harmlessly: the same updates again).

Each page is stored in one transaction with one Provenance naming the versions written, the connector (``origin``:
the destination's device, for its organisation) and the source system.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.origins import attribute
from gateway.store.db import begin_write
from gateway.store.records import StoredResource
from gateway.store.repository import FhirRepository
from gateway.store.timeutil import now_us
from gateway.sync.tables import sync_cursor
from mappings.provenance import Origin

PAGE = 100


class PullSource(Protocol):
    def changed_since(self, res_type: str, cursor: str | None) -> AsyncIterator[dict[str, Any]]: ...


@dataclass(slots=True)
class PullReport:
    resources: int = 0
    cursors: dict[str, str | None] | None = None


async def read_cursor(engine: AsyncEngine, source: str) -> str | None:
    async with engine.connect() as conn:
        return (await conn.execute(select(sync_cursor.c.position).where(sync_cursor.c.source == source))).scalar()


async def save_cursor(engine: AsyncEngine, source: str, position: str) -> None:
    conn = await begin_write(engine)
    try:
        async with conn.begin():
            dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            stmt = dialect_insert(sync_cursor).values(source=source, position=position, updated_at=now_us())
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["source"], set_={"position": position, "updated_at": now_us()}
                )
            )
    finally:
        await conn.close()


async def pull(
    engine: AsyncEngine,
    repo: FhirRepository,
    name: str,
    source: PullSource,
    types: Sequence[str],
    *,
    origin: Origin,
) -> PullReport:
    """Pull every type's changes since its cursor into the store, attributed to ``origin``; returns how many
    resources were stored."""
    report = PullReport(cursors={})
    for res_type in types:
        key = f"pull:{name}:{res_type}"
        cursor = await read_cursor(engine, key)
        batch: list[dict[str, Any]] = []
        async for resource in source.changed_since(res_type, cursor):
            batch.append(resource)
            if len(batch) >= PAGE:
                cursor = await _store(engine, repo, key, batch, cursor, origin)
                report.resources += len(batch)
                batch = []
        if batch:
            cursor = await _store(engine, repo, key, batch, cursor, origin)
            report.resources += len(batch)
        assert report.cursors is not None
        report.cursors[res_type] = cursor
    return report


async def _store(
    engine: AsyncEngine,
    repo: FhirRepository,
    key: str,
    batch: list[dict[str, Any]],
    cursor: str | None,
    origin: Origin,
) -> str | None:
    last = cursor
    async with repo.transaction() as tx:
        written: list[StoredResource] = []
        for resource in batch:
            meta = resource.get("meta", {})
            updated = meta.get("lastUpdated") if isinstance(meta, dict) else None
            body = {k: v for k, v in resource.items() if k != "meta"}
            result = await tx.update(str(resource["resourceType"]), str(resource["id"]), body)
            if result.resource is not None:
                written.append(result.resource)
            if isinstance(updated, str) and (last is None or updated > last):
                last = updated
        await attribute(tx, written, origin)
    if last is not None and last != cursor:
        await save_cursor(engine, key, last)
    return last
