"""FHIR search compiled to indexed SQL over the ``sp_*`` tables.

Placeholder: ``_id``, ``identifier`` (token ``system|code``), ``_count`` and ``_offset``. The full search engine
replaces this module behind the same two functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import InvalidSearch
from gateway.store.models import resource, sp_token
from gateway.store.records import StoredResource


@dataclass(slots=True)
class SearchResult:
    """One page of matches, the resources pulled in by _include/_revinclude, and paging facts."""

    matches: list[StoredResource]
    includes: list[StoredResource] = field(default_factory=list)
    total: int | None = None
    offset: int = 0
    count: int = 20
    has_next: bool = False
    params: list[tuple[str, str]] = field(default_factory=list)  # the parameters as understood, for links
    summary_count: bool = False


def _conditions(res_type: str, params: Sequence[tuple[str, str]], strict: bool) -> list[object]:
    conds: list[object] = [resource.c.res_type == res_type, resource.c.deleted.is_(False)]
    for name, value in params:
        if name in ("_count", "_offset"):
            continue
        if name == "_id":
            conds.append(resource.c.res_id.in_(value.split(",")))
        elif name == "identifier":
            system, _, code = value.rpartition("|") if "|" in value else (None, "", value)
            sub = select(sp_token.c.res_pk).where(
                sp_token.c.res_pk == resource.c.pk, sp_token.c.param == "identifier", sp_token.c.code == code
            )
            if system:
                sub = sub.where(sp_token.c.system == system)
            conds.append(exists(sub))
        elif strict:
            raise InvalidSearch(f"unknown search parameter {name!r} for {res_type}")
    return conds


async def find_matches(
    conn: AsyncConnection, res_type: str, params: Sequence[tuple[str, str]], *, limit: int
) -> list[str]:
    """Logical ids of the resources matching a conditional interaction's criteria (at most ``limit``)."""
    if not params:
        raise InvalidSearch("a conditional interaction needs search criteria")
    q = select(resource.c.res_id).where(*_conditions(res_type, params, True)).limit(limit)  # type: ignore[arg-type]
    return [r[0] for r in (await conn.execute(q)).all()]


async def execute_search(
    conn: AsyncConnection,
    res_type: str,
    params: Sequence[tuple[str, str]],
    *,
    strict: bool,
    default_count: int,
    max_count: int,
) -> SearchResult:
    count = default_count
    offset = 0
    for name, value in params:
        if name == "_count":
            count = min(int(value), max_count)
        if name == "_offset":
            offset = int(value)
    conds = _conditions(res_type, params, strict)
    total = (await conn.execute(select(func.count()).select_from(resource).where(*conds))).scalar_one()  # type: ignore[arg-type]
    rows = (
        await conn.execute(
            select(resource.c.res_id, resource.c.version_id, resource.c.last_updated, resource.c.content)
            .where(*conds)  # type: ignore[arg-type]
            .order_by(resource.c.pk)
            .offset(offset)
            .limit(count)
        )
    ).all()
    matches = [StoredResource(res_type, r.res_id, r.version_id, r.last_updated, r.content) for r in rows]
    return SearchResult(matches, [], total, offset, count, offset + count < total, list(params))
