"""Many writes in a handful of statements: the write path of large transaction Bundles.

:meth:`SqlFhirRepository.create` and ``update`` cost ten to fifteen statements per resource (savepoints, the
resource row, its history row, one delete and one insert per index table, the outbox row). On SQLite each
statement is a hop to aiosqlite's thread, on PostgreSQL a round trip, so a 1,000-entry transaction spent most
of its time waiting. Here each table gets one executemany statement for the whole batch; the primary keys of new
rows and the current versions of existing ones are read with one SELECT per 500 ids.

The rows written are exactly those :meth:`SqlFhirRepository._store` writes (same content bytes, history, index
and outbox rows); ``tests/store/test_bundle_bulk.py`` compares the two paths so they cannot drift apart.
Callers check the resources first and run this inside their own transaction; ids in one call are distinct.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import PreconditionFailed
from gateway.store import indexing
from gateway.store.models import (
    INDEX_TABLES,
    outbox,
    resource,
    resource_version,
    sp_date,
    sp_reference,
    sp_string,
    sp_token,
)
from gateway.store.records import StoredResource
from gateway.store.timeutil import now_us, to_instant

#: Ids per SELECT or DELETE ... IN (well inside both databases' bound-parameter limits).
_CHUNK = 500

Key = tuple[str, str]  # (resource type, logical id)


def _document(res_type: str, res_id: str, version: int, body: dict[str, Any], instant: str) -> dict[str, Any]:
    """The stored document: resourceType, id and meta first (as ``_store`` lays it out), then the body."""
    meta = dict(body.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = instant
    doc = {"resourceType": res_type, "id": res_id, "meta": meta}
    doc.update((k, v) for k, v in body.items() if k not in ("resourceType", "id", "meta"))
    return doc


def _chunks(keys: Sequence[Key]) -> list[tuple[str, list[str]]]:
    """Ids grouped by type, sorted (so concurrent writers take row locks in one order), at most ``_CHUNK`` each."""
    by_type: dict[str, list[str]] = {}
    for res_type, res_id in sorted(set(keys)):
        by_type.setdefault(res_type, []).append(res_id)
    return [(t, ids[i : i + _CHUNK]) for t, ids in by_type.items() for i in range(0, len(ids), _CHUNK)]


async def current_rows(conn: AsyncConnection, keys: Sequence[Key], *, lock: bool) -> dict[Key, tuple[int, int]]:
    """(pk, version) of those ``keys`` that have a row (deleted or not); ``lock``: FOR UPDATE on PostgreSQL."""
    found: dict[Key, tuple[int, int]] = {}
    for res_type, ids in _chunks(keys):
        q = (
            select(resource.c.pk, resource.c.res_id, resource.c.version_id)
            .where(resource.c.res_type == res_type, resource.c.res_id.in_(ids))
            .order_by(resource.c.res_id)
        )
        if lock and conn.dialect.name == "postgresql":
            q = q.with_for_update()
        for row in (await conn.execute(q)).all():
            found[(res_type, row.res_id)] = (row.pk, row.version_id)
    return found


async def insert_created(conn: AsyncConnection, items: Sequence[tuple[dict[str, Any], str]]) -> list[StoredResource]:
    """Store each (checked body, new id) as version 1, all at one ``lastUpdated``. Returns them in order."""
    if not items:
        return []
    ts = now_us()
    instant = to_instant(ts)
    docs = [_document(body["resourceType"], res_id, 1, body, instant) for body, res_id in items]
    contents = [orjson.dumps(doc) for doc in docs]
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
    try:
        async with conn.begin_nested():
            await conn.execute(insert(resource), rows)
    except IntegrityError as exc:
        raise PreconditionFailed("a resource with one of the new ids was created concurrently; retry") from exc
    keys = [(doc["resourceType"], doc["id"]) for doc in docs]
    current = await current_rows(conn, keys, lock=False)
    pks = [current[key][0] for key in keys]
    await _history_index_outbox(conn, docs, contents, pks, ts, "create")
    return [
        StoredResource(doc["resourceType"], doc["id"], 1, ts, content, "create")
        for doc, content in zip(docs, contents, strict=True)
    ]


async def replace_current(
    conn: AsyncConnection, items: Sequence[tuple[dict[str, Any], str, tuple[int, int]]]
) -> list[StoredResource]:
    """Store each (checked body, id, (pk, current version) locked by the caller) as the next version."""
    if not items:
        return []
    ts = now_us()
    instant = to_instant(ts)
    docs = [_document(body["resourceType"], res_id, version + 1, body, instant) for body, res_id, (_, version) in items]
    contents = [orjson.dumps(doc) for doc in docs]
    pks = [pk for _body, _id, (pk, _version) in items]
    await conn.execute(
        update(resource)
        .where(resource.c.pk == bindparam("b_pk"))
        .values(version_id=bindparam("b_version"), last_updated=ts, deleted=False, content=bindparam("b_content")),
        [
            {"b_pk": pk, "b_version": int(doc["meta"]["versionId"]), "b_content": content}
            for pk, doc, content in zip(pks, docs, contents, strict=True)
        ],
    )
    for table in INDEX_TABLES:
        for start in range(0, len(pks), _CHUNK):
            await conn.execute(delete(table).where(table.c.res_pk.in_(pks[start : start + _CHUNK])))
    await _history_index_outbox(conn, docs, contents, pks, ts, "update")
    return [
        StoredResource(doc["resourceType"], doc["id"], int(doc["meta"]["versionId"]), ts, content, "update")
        for doc, content in zip(docs, contents, strict=True)
    ]


async def _history_index_outbox(
    conn: AsyncConnection, docs: list[dict[str, Any]], contents: list[bytes], pks: list[int], ts: int, method: str
) -> None:
    await conn.execute(
        insert(resource_version),
        [
            {
                "res_type": doc["resourceType"],
                "res_id": doc["id"],
                "version_id": int(doc["meta"]["versionId"]),
                "last_updated": ts,
                "method": method,
                "content": content,
            }
            for doc, content in zip(docs, contents, strict=True)
        ],
    )
    tokens: list[dict[str, Any]] = []
    strings: list[dict[str, Any]] = []
    references: list[dict[str, Any]] = []
    dates: list[dict[str, Any]] = []
    for pk, doc in zip(pks, docs, strict=True):
        res_type = doc["resourceType"]
        extracted = indexing.extract(doc)
        tokens += [
            {"res_pk": pk, "res_type": res_type, "param": p, "system": s, "code": c} for p, s, c in extracted.tokens
        ]
        strings += [
            {"res_pk": pk, "res_type": res_type, "param": p, "norm": n, "exact": e} for p, n, e in extracted.strings
        ]
        references += [
            {"res_pk": pk, "res_type": res_type, "param": p, "target_type": t, "target_id": i, "target_url": u}
            for p, t, i, u in extracted.references
        ]
        dates += [
            {"res_pk": pk, "res_type": res_type, "param": p, "low": lo, "high": hi} for p, lo, hi in extracted.dates
        ]
    for table, index_rows in ((sp_token, tokens), (sp_string, strings), (sp_reference, references), (sp_date, dates)):
        if index_rows:
            await conn.execute(insert(table), index_rows)
    await conn.execute(
        insert(outbox),
        [
            {
                "res_type": doc["resourceType"],
                "res_id": doc["id"],
                "version_id": int(doc["meta"]["versionId"]),
                "method": method,
                "patient_id": indexing.patient_id_of(doc),
                "created_at": ts,
            }
            for doc in docs
        ],
    )
