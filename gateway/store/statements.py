"""Running the store's hand-written SQL: through asyncpg directly on PostgreSQL, through SQLAlchemy on SQLite.

The hot paths (read by id, search) issue a few fixed-shape statements per request. On PostgreSQL, outside a
transaction scope (the repository's autocommit read connections), they go straight to the asyncpg connection under
the SQLAlchemy connection (same pool), with ``:name``
placeholders turned into asyncpg's ``$n``; asyncpg prepares each distinct statement once per connection. This
skips SQLAlchemy's statement, execution-context and result layers, which cost about a sixth of a read's CPU
under load. On SQLite the same text runs through SQLAlchemy (aiosqlite), which has no such overhead to lose.

Inside a transaction scope the SQLAlchemy path is used on both dialects, so the statement joins the transaction
(SQLAlchemy's asyncpg adapter begins it lazily, on its first statement). Rows are sequences in both cases:
callers index them by position.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)")


@lru_cache(maxsize=1024)
def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """``... = :b0 AND ... = :b1`` → (``... = $1 AND ... = $2``, ``("b0", "b1")``); a name used twice keeps one slot."""
    names: list[str] = []

    def _number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PLACEHOLDER.sub(_number, sql), tuple(names)


def _autocommit(conn: AsyncConnection) -> bool:
    sync = conn.sync_connection
    return sync is not None and sync.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


async def fetch(conn: AsyncConnection, sql: str, values: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
    """All rows of ``sql`` with ``values`` bound by name."""
    if conn.dialect.name == "postgresql" and _autocommit(conn):
        statement, names = positional(sql)
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        rows: Sequence[Sequence[Any]] = await driver.fetch(statement, *(values[n] for n in names))
        return rows
    return (await conn.execute(text(sql), dict(values))).all()


async def fetch_one(conn: AsyncConnection, sql: str, values: Mapping[str, Any]) -> Sequence[Any] | None:
    rows = await fetch(conn, sql, values)
    return rows[0] if rows else None
