"""Running the store's hand-written SQL: through asyncpg directly on PostgreSQL, through SQLAlchemy on SQLite.

The hot paths (read by id, search) issue a few fixed-shape statements per request. On PostgreSQL, outside a
transaction scope (the repository's autocommit read connections), they go straight to the asyncpg connection under
the SQLAlchemy connection (same pool), with ``:name``
placeholders turned into asyncpg's ``$n``; asyncpg prepares each distinct statement once per connection. This
skips SQLAlchemy's statement, execution-context and result layers, which cost about a sixth of a read's CPU
under load. The same inside a transaction scope once the transaction has begun; before that (SQLAlchemy's asyncpg
adapter begins lazily, on its first statement) the SQLAlchemy path runs the statement and begins it.

On SQLite the text goes to the sqlite3 connection under aiosqlite in one call on its worker thread (see
:func:`_fetch_sqlite`). Rows are sequences in every case: callers index them by position.
"""

from __future__ import annotations

import re
import sqlite3
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
    if conn.dialect.name == "postgresql":
        raw = await conn.get_raw_connection()
        # Autocommit, or a transaction the adapter has begun: the driver's statement runs where SQLAlchemy's would.
        if _autocommit(conn) or getattr(raw.dbapi_connection, "_transaction", None) is not None:
            statement, names = positional(sql)
            driver: Any = raw.driver_connection
            rows: Sequence[Sequence[Any]] = await driver.fetch(statement, *(values[n] for n in names))
            return rows
    elif conn.dialect.name == "sqlite":
        return await _fetch_sqlite(conn, sql, values)
    return (await conn.execute(text(sql), dict(values))).all()


async def _fetch_sqlite(conn: AsyncConnection, sql: str, values: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
    """The statement and its rows in one hop to aiosqlite's thread (sqlite3 binds ``:name`` itself).

    Through SQLAlchemy a read outside a transaction scope took three hops (``BEGIN``, the statement, the
    ``ROLLBACK``), each waiting its turn on a busy event loop. A single SELECT in autocommit is atomic on its
    own; inside a scope the statement joins the transaction SQLAlchemy began on this connection.
    """
    raw = await conn.get_raw_connection()
    aio: Any = raw.driver_connection  # aiosqlite.Connection
    params = dict(values)
    rows: Sequence[Sequence[Any]] = await aio._execute(_all_rows, aio._conn, sql, params)  # noqa: SLF001
    return rows


def _all_rows(db: sqlite3.Connection, sql: str, params: dict[str, Any]) -> list[Any]:
    return db.execute(sql, params).fetchall()


async def fetch_one(conn: AsyncConnection, sql: str, values: Mapping[str, Any]) -> Sequence[Any] | None:
    rows = await fetch(conn, sql, values)
    return rows[0] if rows else None
