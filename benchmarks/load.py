"""Bulk-load a synthetic ICS into a fresh PostgreSQL database, with the rows the repository would write.

Not through HTTP or the repository (100,000 young people are 1.7 million resources): each resource's rows come
from :func:`gateway.store.rows.version_rows` (the same content bytes, history row, ``indexing.extract`` index
rows and outbox row as :meth:`SqlFhirRepository._store`), laid out by the tables' columns as declared in
:mod:`gateway.store.models`, and written with ``COPY`` (asyncpg ``copy_records_to_table``).

To keep the load fast the secondary indexes are dropped first and rebuilt after (their definitions are read from
``pg_indexes``, so whatever the migrations created comes back), and foreign-key triggers are off for the loading
session (``session_replication_role = replica``; the rows are consistent by construction). Then the primary key
sequence is moved past the loaded rows and the tables are vacuumed and analysed.

Outbox events are written as already relayed (``relayed_at`` set): the loaded ICS is history, not news.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import Table

from benchmarks import ics
from gateway.store import rows
from gateway.store.models import INDEX_TABLES, metadata, outbox, resource, resource_version
from gateway.store.timeutil import now_us, to_instant

#: Young people per COPY round.
CHUNK = 1000


@dataclass
class LoadStats:
    young_people: int
    resources: int
    seconds: float
    build_seconds: float
    copy_seconds: float
    index_seconds: float
    analyse_seconds: float


def copy_columns(table: Table, supplied: Iterable[str]) -> list[str]:
    """The columns to COPY into ``table``: those the row builder supplies, in table order.

    A NOT NULL column without a default that the builder does not supply is an error (the schema has grown a
    column :mod:`gateway.store.rows` does not know about), not a silent NULL.
    """
    given = set(supplied)
    columns = []
    for column in table.columns:
        if column.name in given:
            columns.append(column.name)
        elif not column.nullable and column.default is None and column.server_default is None:
            if column.primary_key and column.autoincrement in (True, "auto") and len(table.primary_key) == 1:
                continue  # a serial key: the database numbers the rows
            raise RuntimeError(f"{table.name}.{column.name} is NOT NULL but gateway.store.rows does not fill it")
    unknown = given - {c.name for c in table.columns}
    if unknown:
        raise RuntimeError(f"gateway.store.rows fills columns {sorted(unknown)} that {table.name} does not have")
    return columns


class Batch:
    """Records for every table, built from :class:`rows.VersionRows`, ready for ``copy_records_to_table``."""

    def __init__(self) -> None:
        self.records: dict[str, list[tuple[Any, ...]]] = {t.name: [] for t in metadata.sorted_tables}
        self.columns: dict[str, list[str]] = {}
        self.count = 0

    def _add(self, table: Table, row: dict[str, Any]) -> None:
        columns = self.columns.get(table.name)
        if columns is None:
            columns = self.columns[table.name] = copy_columns(table, row)
        self.records[table.name].append(tuple(row.get(c) for c in columns))

    def add(self, body: dict[str, Any], pk: int, ts: int, instant: str) -> None:
        built = rows.version_rows(body, body["id"], pk=pk, ts=ts, instant=instant)
        self._add(resource, {"pk": pk, **built.resource})
        self._add(resource_version, built.version)
        for table in INDEX_TABLES:
            for row in built.index.get(table.name, ()):
                self._add(table, row)
        self._add(outbox, {**built.outbox, "relayed_at": ts})
        self.count += 1


async def _secondary_indexes(conn: asyncpg.Connection, tables: Sequence[str]) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the indexes on ``tables`` that no constraint owns."""
    found = await conn.fetch(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.schemaname = 'public' AND i.tablename = ANY($1::text[])
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = (quote_ident(i.indexname))::regclass)
        ORDER BY i.indexname
        """,
        list(tables),
    )
    return [(r["indexname"], r["indexdef"]) for r in found]


async def recreate_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def load(dsn: str, young_people: int, seed: int, *, progress: bool = True) -> LoadStats:
    """Load pools and ``young_people`` young people into the (migrated, empty) database at ``dsn``."""
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    build = copy = 0.0
    tables = [t.name for t in metadata.sorted_tables if t.name in {resource.name, resource_version.name, outbox.name}]
    tables += [t.name for t in INDEX_TABLES]
    try:
        indexes = await _secondary_indexes(conn, tables)
        for name, _definition in indexes:
            await conn.execute(f'DROP INDEX "{name}"')
        try:
            await conn.execute("SET session_replication_role = replica")
        except asyncpg.PostgresError:
            pass  # not a superuser: the foreign keys are checked, which is only slower
        pool = ics.pools(seed)
        pk = 0
        total = 0
        for first in [-1, *range(0, young_people, CHUNK)]:
            t0 = time.perf_counter()
            batch = Batch()
            ts = now_us()
            instant = to_instant(ts)
            if first < 0:  # the pools first
                bodies = pool.resources
            else:
                last = min(first + CHUNK, young_people)
                bodies = [r for i in range(first, last) for r in ics.young_person(seed, i, pool).resources]
            for body in bodies:
                pk += 1
                batch.add(body, pk, ts, instant)
            t1 = time.perf_counter()
            for table in metadata.sorted_tables:
                records = batch.records.get(table.name)
                if records:
                    await conn.copy_records_to_table(table.name, records=records, columns=batch.columns[table.name])
            t2 = time.perf_counter()
            build += t1 - t0
            copy += t2 - t1
            total += batch.count
            if progress and first >= 0 and (first // CHUNK) % 10 == 9:
                rate = total / (t2 - started)
                print(
                    f"  loaded {min(first + CHUNK, young_people):,} young people, {total:,} resources ({rate:,.0f}/s)"
                )
        await conn.execute("RESET session_replication_role")
        t3 = time.perf_counter()
        for _name, definition in indexes:
            await conn.execute(definition)
        await conn.execute(f"SELECT setval(pg_get_serial_sequence('resource', 'pk'), {max(pk, 1)})")
        t4 = time.perf_counter()
        for name in tables:
            await conn.execute(f"VACUUM (ANALYZE) {name}")
        t5 = time.perf_counter()
    finally:
        await conn.close()
    return LoadStats(young_people, total, t5 - started, build, copy, t4 - t3, t5 - t4)
