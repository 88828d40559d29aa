"""Many writes in a handful of statements, sent with as few waits as the driver allows.

:meth:`SqlFhirRepository.create` and ``update`` cost ten to fifteen statements per resource (savepoints, the
resource row, its history row, one delete and one insert per index table, the outbox row). Here each table gets
one statement for the whole batch, and the current versions of existing rows are read with one SELECT per 500
ids. The repository's single-resource ``create`` and ``update`` are one-item batches of the same plans.

The statements of a write are a *plan*: a generator that yields each :class:`Statement` and is sent back its
rows, so the rows of one statement (new primary keys, current versions) can shape the next. A plan is driven
below SQLAlchemy, on the driver connection of the caller's transaction:

- SQLite: the whole plan runs in one call on aiosqlite's worker thread, instead of one thread hop (and event
  loop wake-up) per statement, which cost more than the statements themselves;
- PostgreSQL: each statement goes to asyncpg directly (prepared once per connection), skipping SQLAlchemy's
  compile, execution-context and result layers; the rows go as one array per column (``unnest``), so a write
  is three or four round trips whatever its size (current versions, new rows, replaced rows, then history,
  index and outbox rows in one statement).

The rows written are exactly those :meth:`SqlFhirRepository._store` writes (same content bytes, history, index
and outbox rows); ``tests/store/test_bundle_bulk.py`` compares the two paths so they cannot drift apart.
Callers check the resources first and run this inside their own transaction (which rolls back on any error);
ids in one call are distinct.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import PreconditionFailed
from gateway.store import indexing
from gateway.store.records import StoredResource
from gateway.store.rows import index_rows, stored_document
from gateway.store.statements import positional
from gateway.store.timeutil import now_us, to_instant

#: Ids per SELECT (well inside both databases' bound-parameter limits).
_CHUNK = 500

Key = tuple[str, str]  # (resource type, logical id)
Row = tuple[Any, ...]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Statement:
    """SQL with ``:name`` placeholders, run once per parameter set; ``returns``: its rows are sent back to the plan.

    ``conflict``: a unique-key violation of this statement means a concurrent writer won (412 with this message).
    """

    sql: str
    params: list[dict[str, Any]]
    returns: bool = False
    conflict: str | None = None


#: A write: yields statements, is sent each one's rows (empty unless ``returns``), returns its result.
Plan = Generator[Statement, list[Row], T]

_INSERT_RESOURCE = (
    "INSERT INTO resource (res_type, res_id, version_id, last_updated, deleted, content)"
    " VALUES (:res_type, :res_id, :version_id, :last_updated, :deleted, :content) RETURNING pk, res_type, res_id"
)
_UPDATE_RESOURCE = (
    "UPDATE resource SET version_id = :version_id, last_updated = :last_updated, deleted = :deleted,"
    " content = :content WHERE pk = :pk"
)
_INSERT_VERSION = (
    "INSERT INTO resource_version (res_type, res_id, version_id, last_updated, method, content)"
    " VALUES (:res_type, :res_id, :version_id, :last_updated, :method, :content)"
)
_INSERT_INDEX = {
    "sp_token": "INSERT INTO sp_token (res_pk, res_type, param, system, code)"
    " VALUES (:res_pk, :res_type, :param, :system, :code)",
    "sp_string": "INSERT INTO sp_string (res_pk, res_type, param, norm, exact)"
    " VALUES (:res_pk, :res_type, :param, :norm, :exact)",
    "sp_reference": "INSERT INTO sp_reference (res_pk, res_type, param, target_type, target_id, target_url)"
    " VALUES (:res_pk, :res_type, :param, :target_type, :target_id, :target_url)",
    "sp_date": "INSERT INTO sp_date (res_pk, res_type, param, low, high)"
    " VALUES (:res_pk, :res_type, :param, :low, :high)",
}
_DELETE_INDEX = [f"DELETE FROM {table} WHERE res_pk = :pk" for table in _INSERT_INDEX]
_INSERT_OUTBOX = (
    "INSERT INTO outbox (res_type, res_id, version_id, method, patient_id, created_at)"
    " VALUES (:res_type, :res_id, :version_id, :method, :patient_id, :created_at)"
)
#: PostgreSQL: the current rows of many (type, id) pairs in one statement, locked in a stable order.
_LOCK_CURRENT_PG = (
    "SELECT r.pk, r.res_type, r.res_id, r.version_id FROM resource r"
    " JOIN unnest(:types::text[], :ids::text[]) AS k(res_type, res_id)"
    " ON r.res_type = k.res_type AND r.res_id = k.res_id ORDER BY r.res_type, r.res_id FOR UPDATE OF r"
)


#: PostgreSQL: each batch statement takes one array per column (``unnest``), so a write is a few round trips
#: whatever its size: new rows, replaced rows with their old index rows deleted, then history, index and outbox.
_INSERT_RESOURCE_PG = (
    "INSERT INTO resource (res_type, res_id, version_id, last_updated, deleted, content)"
    " SELECT * FROM unnest(:res_type::text[], :res_id::text[], :version_id::int[], :last_updated::bigint[],"
    " :deleted::boolean[], :content::bytea[]) RETURNING pk, res_type, res_id"
)
_REPLACE_PG = (
    "WITH replaced AS (UPDATE resource SET version_id = n.version_id, last_updated = n.last_updated,"
    " deleted = n.deleted, content = n.content"
    " FROM unnest(:pk::bigint[], :version_id::int[], :last_updated::bigint[], :deleted::boolean[], :content::bytea[])"
    " AS n(pk, version_id, last_updated, deleted, content) WHERE resource.pk = n.pk)"
    + "".join(
        f", gone_{table} AS (DELETE FROM {table} WHERE res_pk = ANY(:pk::bigint[]))"
        for table in ("sp_token", "sp_string", "sp_reference")
    )
    + " DELETE FROM sp_date WHERE res_pk = ANY(:pk::bigint[])"
)
_INDEX_COLUMNS: dict[str, tuple[str, ...]] = {
    "sp_token": ("res_pk", "res_type", "param", "system", "code"),
    "sp_string": ("res_pk", "res_type", "param", "norm", "exact"),
    "sp_reference": ("res_pk", "res_type", "param", "target_type", "target_id", "target_url"),
    "sp_date": ("res_pk", "res_type", "param", "low", "high"),
}
_PG_TYPES = {
    "res_pk": "bigint",
    "low": "bigint",
    "high": "bigint",
    "version_id": "int",
    "last_updated": "bigint",
    "created_at": "bigint",
    "content": "bytea",
}


def _unnest_insert(table: str, columns: Sequence[str], prefix: str) -> str:
    arrays = ", ".join(f":{prefix}_{c}::{_PG_TYPES.get(c, 'text')}[]" for c in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays})"


_HISTORY_INDEX_OUTBOX_PG = (
    "WITH history AS ("
    + _unnest_insert("resource_version", ("res_type", "res_id", "version_id", "last_updated", "method", "content"), "v")
    + ")"
    + "".join(f", index_{t} AS ({_unnest_insert(t, cols, t)})" for t, cols in _INDEX_COLUMNS.items())
    + " "
    + _unnest_insert("outbox", ("res_type", "res_id", "version_id", "method", "patient_id", "created_at"), "o")
)


def _select_current(keys: Sequence[Key], dialect: str) -> list[Statement]:
    """Statements reading (pk, type, id, version) of those ``keys`` that have a row (PostgreSQL: FOR UPDATE)."""
    ordered = sorted(set(keys))  # concurrent writers take row locks in one order
    chunks = [ordered[i : i + _CHUNK] for i in range(0, len(ordered), _CHUNK)]
    if dialect == "postgresql":
        return [
            Statement(_LOCK_CURRENT_PG, [{"types": [t for t, _ in c], "ids": [i for _, i in c]}], returns=True)
            for c in chunks
        ]
    out = []
    for chunk in chunks:
        marks = ", ".join(f"(:t{n}, :i{n})" for n in range(len(chunk)))
        params: dict[str, Any] = {}
        for n, (res_type, res_id) in enumerate(chunk):
            params[f"t{n}"], params[f"i{n}"] = res_type, res_id
        sql = f"SELECT pk, res_type, res_id, version_id FROM resource WHERE (res_type, res_id) IN (VALUES {marks})"
        out.append(Statement(sql, [params], returns=True))
    return out


def current_plan(keys: Sequence[Key], dialect: str) -> Plan[dict[Key, tuple[int, int]]]:
    """(pk, version) of those ``keys`` that have a row (deleted or not), locked on PostgreSQL."""
    found: dict[Key, tuple[int, int]] = {}
    for statement in _select_current(keys, dialect):
        for pk, res_type, res_id, version in (yield statement):
            found[(res_type, res_id)] = (pk, version)
    return found


def _versions(items: Sequence[tuple[dict[str, Any], str, int]], ts: int) -> tuple[list[dict[str, Any]], list[bytes]]:
    instant = to_instant(ts)
    docs = [stored_document(body["resourceType"], res_id, version, body, instant) for body, res_id, version in items]
    return docs, [orjson.dumps(doc) for doc in docs]


def create_plan(
    items: Sequence[tuple[dict[str, Any], str]],
    ts: int,
    dialect: str,
    conflict: str = "a resource with one of the new ids was created concurrently; retry",
) -> Plan[list[StoredResource]]:
    """Store each (checked body, new id) as version 1 at ``ts``. Returns them in order."""
    if not items:
        return []
    docs, contents = _versions([(body, res_id, 1) for body, res_id in items], ts)
    rows = [
        {
            "res_type": doc["resourceType"],
            "res_id": doc["id"],
            "version_id": 1,
            "last_updated": ts,
            "deleted": False,
            "content": content,
        }
        for doc, content in zip(docs, contents, strict=True)
    ]
    if dialect == "postgresql":
        statement = Statement(_INSERT_RESOURCE_PG, [_arrays(rows)], returns=True, conflict=conflict)
    else:
        statement = Statement(_INSERT_RESOURCE, rows, returns=True, conflict=conflict)
    pk_of = {(res_type, res_id): pk for pk, res_type, res_id in (yield statement)}
    pks = [pk_of[(doc["resourceType"], doc["id"])] for doc in docs]
    yield from _history_index_outbox(docs, contents, pks, ts, "create", dialect)
    return [
        StoredResource(doc["resourceType"], doc["id"], 1, ts, content, "create")
        for doc, content in zip(docs, contents, strict=True)
    ]


def replace_plan(
    items: Sequence[tuple[dict[str, Any], str, tuple[int, int]]], ts: int, dialect: str
) -> Plan[list[StoredResource]]:
    """Store each (checked body, id, (pk, current version) locked by the caller) as the next version at ``ts``."""
    if not items:
        return []
    docs, contents = _versions([(body, res_id, version + 1) for body, res_id, (_, version) in items], ts)
    pks = [pk for _body, _id, (pk, _version) in items]
    rows = [
        {
            "version_id": int(doc["meta"]["versionId"]),
            "last_updated": ts,
            "deleted": False,
            "content": content,
            "pk": pk,
        }
        for pk, doc, content in zip(pks, docs, contents, strict=True)
    ]
    if dialect == "postgresql":
        yield Statement(_REPLACE_PG, [_arrays(rows)])
    else:
        yield Statement(_UPDATE_RESOURCE, rows)
        for sql in _DELETE_INDEX:
            yield Statement(sql, [{"pk": pk} for pk in pks])
    yield from _history_index_outbox(docs, contents, pks, ts, "update", dialect)
    return [
        StoredResource(doc["resourceType"], doc["id"], int(doc["meta"]["versionId"]), ts, content, "update")
        for doc, content in zip(docs, contents, strict=True)
    ]


def upsert_plan(items: Sequence[tuple[dict[str, Any], str]], dialect: str) -> Plan[list[tuple[bool, StoredResource]]]:
    """Update each (checked body, id), or create it under that id; (created?, stored) in the order given."""
    keys = [(body["resourceType"], res_id) for body, res_id in items]
    current = yield from current_plan(keys, dialect)
    fresh = [(body, res_id) for (body, res_id), key in zip(items, keys, strict=True) if key not in current]
    known = [(body, res_id, current[key]) for (body, res_id), key in zip(items, keys, strict=True) if key in current]
    ts = now_us()
    written = {(s.res_type, s.res_id): s for s in (yield from create_plan(fresh, ts, dialect))}
    written.update({(s.res_type, s.res_id): s for s in (yield from replace_plan(known, ts, dialect))})
    return [(key not in current, written[key]) for key in keys]


def update_plan(
    res_type: str, res_id: str, body: dict[str, Any], if_match: int | None, dialect: str
) -> Plan[tuple[bool, StoredResource]]:
    """One update (or create under this id) with an optional version precondition; (created?, stored)."""
    key = (res_type, res_id)
    previous = (yield from current_plan([key], dialect)).get(key)
    if if_match is not None:
        current = previous[1] if previous is not None else None
        if current != if_match:
            raise PreconditionFailed(
                f"If-Match version {if_match} is stale: {res_type}/{res_id} is at version {current}"
            )
    ts = now_us()
    if previous is None:
        conflict = f"{res_type}/{res_id} was created concurrently; retry"
        return True, (yield from create_plan([(body, res_id)], ts, dialect, conflict))[0]
    return False, (yield from replace_plan([(body, res_id, previous)], ts, dialect))[0]


def _history_index_outbox(
    docs: list[dict[str, Any]], contents: list[bytes], pks: list[int], ts: int, method: str, dialect: str
) -> Plan[None]:
    versions = [
        {
            "res_type": doc["resourceType"],
            "res_id": doc["id"],
            "version_id": int(doc["meta"]["versionId"]),
            "last_updated": ts,
            "method": method,
            "content": content,
        }
        for doc, content in zip(docs, contents, strict=True)
    ]
    by_table: dict[str, list[dict[str, Any]]] = {table: [] for table in _INSERT_INDEX}
    for pk, doc in zip(pks, docs, strict=True):
        for table, table_rows in index_rows(pk, doc).items():
            by_table[table] += table_rows
    events = [
        {
            "res_type": doc["resourceType"],
            "res_id": doc["id"],
            "version_id": int(doc["meta"]["versionId"]),
            "method": method,
            "patient_id": indexing.patient_id_of(doc),
            "created_at": ts,
        }
        for doc in docs
    ]
    if dialect == "postgresql":
        params = {f"v_{k}": v for k, v in _arrays(versions).items()}
        for table, columns in _INDEX_COLUMNS.items():
            arrays = _arrays(by_table[table], columns)
            params.update({f"{table}_{k}": v for k, v in arrays.items()})
        params.update({f"o_{k}": v for k, v in _arrays(events).items()})
        yield Statement(_HISTORY_INDEX_OUTBOX_PG, [params])
        return
    yield Statement(_INSERT_VERSION, versions)
    for table, table_rows in by_table.items():
        if table_rows:
            yield Statement(_INSERT_INDEX[table], table_rows)
    yield Statement(_INSERT_OUTBOX, events)


def _arrays(rows: list[dict[str, Any]], columns: Sequence[str] = ()) -> dict[str, list[Any]]:
    """Rows as one array per column (``columns``, or the first row's keys), for PostgreSQL's ``unnest``."""
    names = columns or (list(rows[0]) if rows else [])
    return {name: [row[name] for row in rows] for name in names}


# -- drivers ----------------------------------------------------------------------------------------------------


async def run(conn: AsyncConnection, plan: Plan[T], *, savepoint: bool = True) -> T:
    """Drive ``plan`` inside ``conn``'s transaction, under a savepoint (a failed plan leaves no partial rows).

    ``savepoint=False``: the caller rolls the whole transaction back when the plan fails (no savepoint's round
    trips on PostgreSQL)."""
    raw = await conn.get_raw_connection()
    if conn.dialect.name == "sqlite":
        aio: Any = raw.driver_connection  # aiosqlite.Connection
        on_thread = _savepoint_on_sqlite if savepoint else _run_on_sqlite
        result: T = await aio._execute(on_thread, aio._conn, plan)  # noqa: SLF001 - one hop for the plan
        return result
    if conn.dialect.name == "postgresql":
        if not savepoint:
            adapted: Any = raw.dbapi_connection
            if adapted._transaction is None:  # noqa: SLF001 - SQLAlchemy's adapter begins lazily: begin it now
                await adapted._start_transaction()  # noqa: SLF001
            return await _run_on_asyncpg(raw.driver_connection, plan)
        async with conn.begin_nested():  # also begins the transaction, which SQLAlchemy's adapter does lazily
            return await _run_on_asyncpg(raw.driver_connection, plan)
    raise NotImplementedError(f"no bulk driver for {conn.dialect.name}")


async def run_alone(conn: AsyncConnection, plan: Plan[T]) -> T:
    """Drive ``plan`` in a transaction of its own on ``conn`` (which must not be in one), committed before return.

    The transaction is the driver's, not SQLAlchemy's: on SQLite ``BEGIN IMMEDIATE``, the plan and ``COMMIT`` go
    to aiosqlite's thread in one hop, so the write lock is held for the statements alone and not for several
    trips through a busy event loop; on PostgreSQL asyncpg's own transaction saves SQLAlchemy's layers around
    ``BEGIN`` and ``COMMIT``. Any error rolls everything back.
    """
    raw = await conn.get_raw_connection()
    if conn.dialect.name == "sqlite":
        aio: Any = raw.driver_connection
        result: T = await aio._execute(_commit_on_sqlite, aio._conn, plan)  # noqa: SLF001 - see the docstring
        return result
    if conn.dialect.name == "postgresql":
        driver: Any = raw.driver_connection
        async with driver.transaction():
            return await _run_on_asyncpg(driver, plan)
    raise NotImplementedError(f"no bulk driver for {conn.dialect.name}")


def _commit_on_sqlite(db: sqlite3.Connection, plan: Plan[T]) -> T:
    if db.in_transaction:  # left open by an interrupted user of this pooled connection: not ours to keep
        db.execute("ROLLBACK")
    db.execute("BEGIN IMMEDIATE")
    try:
        result = _run_on_sqlite(db, plan)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return result


def _savepoint_on_sqlite(db: sqlite3.Connection, plan: Plan[T]) -> T:
    db.execute("SAVEPOINT kwg_plan")
    try:
        result = _run_on_sqlite(db, plan)
    except BaseException:
        db.execute("ROLLBACK TO kwg_plan")
        db.execute("RELEASE kwg_plan")
        raise
    db.execute("RELEASE kwg_plan")
    return result


def _run_on_sqlite(db: sqlite3.Connection, plan: Plan[T]) -> T:
    """Runs on aiosqlite's worker thread, inside the transaction begun on this connection."""
    try:
        statement = next(plan)
        while True:
            rows: list[Row] = []
            try:
                if statement.returns:
                    for params in statement.params:
                        rows += db.execute(statement.sql, params).fetchall()
                else:
                    db.executemany(statement.sql, statement.params)
            except sqlite3.IntegrityError as exc:
                if statement.conflict is None:
                    raise
                raise PreconditionFailed(statement.conflict) from exc
            statement = plan.send(rows)
    except StopIteration as done:
        result: T = done.value
        return result


async def _run_on_asyncpg(driver: Any, plan: Plan[T]) -> T:
    try:
        statement = next(plan)
        while True:
            sql, names = positional(statement.sql)
            args = [tuple(params[n] for n in names) for params in statement.params]
            rows: list[Row] = []
            try:
                if statement.returns and len(args) == 1:
                    rows = [tuple(r) for r in await driver.fetch(sql, *args[0])]
                elif statement.returns:
                    rows = [tuple(r) for r in await driver.fetchmany(sql, args)]
                elif len(args) == 1:
                    await driver.execute(sql, *args[0])
                else:
                    await driver.executemany(sql, args)
            except asyncpg.UniqueViolationError as exc:
                if statement.conflict is None:
                    raise
                raise PreconditionFailed(statement.conflict) from exc
            statement = plan.send(rows)
    except StopIteration as done:
        result: T = done.value
        return result
