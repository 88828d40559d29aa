"""Conditions on a list of values that PostgreSQL plans once.

``column IN (:a, :b, ...)`` is a different statement for every length of the list, so asyncpg prepares and
PostgreSQL plans it again for each batch (a batch of 500 ids planned in milliseconds, and a list of row values
became a bitmap OR of 500 index scans). On PostgreSQL the values go as one array parameter instead
(``= ANY($1)``, or a join to ``unnest`` for several columns): one statement whatever the batch size. SQLite plans
an IN list cheaply and keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger, ColumnElement, Integer, Select, String, any_, bindparam, column, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.selectable import NamedFromClause

from gateway.store.models import resource_version


def id_in(col: ColumnElement[int], ids: Sequence[int], dialect: str) -> ColumnElement[bool]:
    """``col`` is one of ``ids`` (integers)."""
    if dialect == "postgresql":
        return col == any_(bindparam("ids", list(ids), type_=ARRAY(BigInteger)))
    return col.in_(list(ids))


def text_in(col: ColumnElement[str], values: Sequence[str], dialect: str) -> ColumnElement[bool]:
    """``col`` is one of ``values`` (strings)."""
    if dialect == "postgresql":
        return col == any_(bindparam("values", list(values), type_=ARRAY(String)))
    return col.in_(list(values))


def version_keys(keys: Sequence[tuple[str, str, int]]) -> NamedFromClause:
    """PostgreSQL: the (type, id, version) keys as a table ``k(res_type, res_id, version_id)`` from ``unnest``."""
    types, ids, versions = (list(part) for part in zip(*keys, strict=True)) if keys else ([], [], [])
    unnested = func.unnest(
        bindparam("types", types, type_=ARRAY(String)),
        bindparam("ids", ids, type_=ARRAY(String)),
        bindparam("versions", versions, type_=ARRAY(Integer)),
    ).table_valued(column("res_type", String), column("res_id", String), column("version_id", Integer))
    return unnested.render_derived(name="k")


def versions_query(keys: Sequence[tuple[str, str, int]]) -> Select[tuple[str, str, int, bytes]]:
    """PostgreSQL: the stored content of these resource versions, as one join to the primary key."""
    k = version_keys(keys)
    v = resource_version
    return select(v.c.res_type, v.c.res_id, v.c.version_id, v.c.content).join_from(
        k,
        v,
        (v.c.res_type == k.c.res_type) & (v.c.res_id == k.c.res_id) & (v.c.version_id == k.c.version_id),
    )
