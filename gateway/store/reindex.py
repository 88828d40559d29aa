"""Rebuild the search index from the stored resources (after the parameter registry changes).

Index rows are extracted at write time; a resource stored before a parameter was added has no rows for it. This
walks the current versions of the chosen types in primary-key order, in batches, and replaces each batch's index
rows in one transaction with what :func:`gateway.store.rows.index_rows` extracts now. Resource bytes, versions
and history are untouched and no outbox events are written: nothing about the resources changed. Safe to run
while the gateway serves (each batch is its own short transaction) and safe to repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.db import begin_write
from gateway.store.models import INDEX_TABLES, resource
from gateway.store.rows import index_rows


@dataclass(frozen=True, slots=True)
class ReindexReport:
    resources: int
    rows: int


async def reindex(
    engine: AsyncEngine,
    res_types: Sequence[str] | None = None,
    *,
    batch: int = 500,
    progress: Callable[[int], None] | None = None,
) -> ReindexReport:
    """Replace the index rows of every live resource (of ``res_types``, or all) with freshly extracted ones."""
    tables = {t.name: t for t in INDEX_TABLES}
    last_pk = 0
    done = rows_written = 0
    while True:
        conn = await begin_write(engine)
        try:
            async with conn.begin():
                q = (
                    select(resource.c.pk, resource.c.content)
                    .where(resource.c.pk > last_pk, resource.c.deleted.is_(False))
                    .order_by(resource.c.pk)
                    .limit(batch)
                )
                if res_types:
                    q = q.where(resource.c.res_type.in_(list(res_types)))
                found = (await conn.execute(q)).all()
                if not found:
                    break
                pks = [pk for pk, _ in found]
                for table in INDEX_TABLES:
                    await conn.execute(delete(table).where(table.c.res_pk.in_(pks)))
                by_table: dict[str, list[dict[str, object]]] = {}
                for pk, content in found:
                    for name, table_rows in index_rows(pk, orjson.loads(content)).items():
                        by_table.setdefault(name, []).extend(table_rows)
                for name, table_rows in by_table.items():
                    await conn.execute(insert(tables[name]), table_rows)
                    rows_written += len(table_rows)
        finally:
            await conn.close()
        last_pk = pks[-1]
        done += len(found)
        if progress is not None:
            progress(done)
    return ReindexReport(done, rows_written)
