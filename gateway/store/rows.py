"""The rows one stored resource version occupies, built without a database.

:meth:`SqlFhirRepository._store` and :mod:`gateway.store.bulk` write, for each version of a resource: the
``resource`` row (current version), the ``resource_version`` row (history), the ``sp_*`` index rows and an
``outbox`` row. This module builds exactly those rows as plain dicts keyed by column name, so a bulk loader
(``benchmarks/fhir_store.py`` loads a 1.7-million-resource ICS with PostgreSQL ``COPY``) can write what the
repository would have written without going through it. ``tests/store/test_rows.py`` compares these rows with
the ones the repository writes, so the two cannot drift apart.

Pure functions: no I/O, no clock (the caller passes the time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gateway.store import indexing
from gateway.store.models import sp_date, sp_reference, sp_string, sp_token
from gateway.store.timeutil import to_instant

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class VersionRows:
    """Everything one write of a resource puts in the database (the ``resource`` row without its ``pk``)."""

    content: bytes  # the canonical JSON served on reads
    resource: Row
    version: Row
    index: dict[str, list[Row]]  # index table name -> rows, each carrying ``res_pk``
    outbox: Row


def stored_document(res_type: str, res_id: str, version: int, body: dict[str, Any], instant: str) -> dict[str, Any]:
    """The stored document: resourceType, id and meta (versionId, lastUpdated) first, then the rest of the body."""
    meta = dict(body.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = instant
    doc: dict[str, Any] = {"resourceType": res_type, "id": res_id, "meta": meta}
    doc.update((k, v) for k, v in body.items() if k not in ("resourceType", "id", "meta"))
    return doc


def index_rows(pk: int, doc: dict[str, Any]) -> dict[str, list[Row]]:
    """The ``sp_*`` rows of a stored document, by table name (tables without rows are left out)."""
    res_type = doc["resourceType"]
    extracted = indexing.extract(doc)
    out: dict[str, list[Row]] = {}
    if extracted.tokens:
        out[sp_token.name] = [
            {"res_pk": pk, "res_type": res_type, "param": p, "system": s, "code": c} for p, s, c in extracted.tokens
        ]
    if extracted.strings:
        out[sp_string.name] = [
            {"res_pk": pk, "res_type": res_type, "param": p, "norm": n, "exact": e} for p, n, e in extracted.strings
        ]
    if extracted.references:
        out[sp_reference.name] = [
            {"res_pk": pk, "res_type": res_type, "param": p, "target_type": t, "target_id": i, "target_url": u}
            for p, t, i, u in extracted.references
        ]
    if extracted.dates:
        out[sp_date.name] = [
            {"res_pk": pk, "res_type": res_type, "param": p, "low": lo, "high": hi} for p, lo, hi in extracted.dates
        ]
    return out


def version_rows(
    body: dict[str, Any], res_id: str, *, pk: int, ts: int, version: int = 1, instant: str | None = None
) -> VersionRows:
    """The rows of writing ``body`` as ``version`` of ``res_id`` at ``ts`` (microseconds), under ``pk``.

    ``instant`` is ``to_instant(ts)``; callers writing many rows at one time pass it to save the formatting.
    """
    res_type = body["resourceType"]
    doc = stored_document(res_type, res_id, version, body, instant or to_instant(ts))
    content = orjson.dumps(doc)
    method = "create" if version == 1 else "update"
    return VersionRows(
        content=content,
        resource={
            "res_type": res_type,
            "res_id": res_id,
            "version_id": version,
            "last_updated": ts,
            "deleted": False,
            "content": content,
        },
        version={
            "res_type": res_type,
            "res_id": res_id,
            "version_id": version,
            "last_updated": ts,
            "method": method,
            "content": content,
        },
        index=index_rows(pk, doc),
        outbox={
            "res_type": res_type,
            "res_id": res_id,
            "version_id": version,
            "method": method,
            "patient_id": indexing.patient_id_of(doc),
            "created_at": ts,
        },
    )
