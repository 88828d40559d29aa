"""Stored resources of one type, read in pages straight from the ``resource`` table (bounded memory).

Keyset pagination on ``(res_type, res_id)`` (the unique index): each page is one indexed range scan from where the
last one ended, so the thousandth page costs what the first did, and no cursor stays open between pages (a long
export holds no transaction). Content is the stored canonical JSON bytes: nothing is parsed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from gateway.export.scope import Kind, Selection, compartment_parameter
from gateway.store.models import resource, sp_reference

#: One stored row as the writer needs it: id and canonical JSON bytes.
Row = tuple[str, bytes]


def _conditions(selection: Selection) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        resource.c.res_type == selection.res_type,
        resource.c.deleted.is_(False),
    ]
    if selection.since is not None:
        conditions.append(resource.c.last_updated > selection.since)
    if selection.until is not None:
        conditions.append(resource.c.last_updated <= selection.until)
    if selection.kind is Kind.SYSTEM:
        return conditions
    if selection.res_type == "Patient":
        if selection.patients is not None:
            conditions.append(resource.c.res_id.in_(selection.patients))
        return conditions
    name = compartment_parameter(selection.res_type)
    about = [
        sp_reference.c.res_type == selection.res_type,
        sp_reference.c.param == name,
        sp_reference.c.target_type == "Patient",
    ]
    if selection.patients is not None:
        about.append(sp_reference.c.target_id.in_(selection.patients))
    conditions.append(resource.c.pk.in_(select(sp_reference.c.res_pk).where(and_(*about))))
    return conditions


async def pages(engine: AsyncEngine, selection: Selection, page_size: int) -> AsyncIterator[Sequence[Row]]:
    """Pages of ``(id, content)`` in id order; an empty selection yields nothing."""
    if selection.patients is not None and not selection.patients:
        return
    query = (
        select(resource.c.res_id, resource.c.content)
        .where(*_conditions(selection), resource.c.res_id > bindparam("after"))
        .order_by(resource.c.res_id)
        .limit(page_size)
    )
    after = ""
    while True:
        async with engine.connect() as conn:
            rows = (await conn.execute(query, {"after": after})).all()
        if not rows:
            return
        page = [(str(r[0]), bytes(r[1])) for r in rows if r[1] is not None]
        if page:
            yield page
        if len(rows) < page_size:
            return
        after = str(rows[-1][0])
