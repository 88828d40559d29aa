"""Database engines for the two dialects the store runs on.

SQLite (embedded default): WAL journal, ``synchronous=FULL`` so a commit is on disk before we answer, foreign keys
on, a busy timeout, and explicit transaction control: read transactions are ``BEGIN`` (deferred, concurrent with
other readers), write transactions ``BEGIN IMMEDIATE`` (take the write lock up front, so two writers queue instead of
failing half way). PostgreSQL (production): asyncpg with a pool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway.settings import Settings

#: Execution option that marks a connection as a write transaction (SQLite: BEGIN IMMEDIATE).
WRITE_OPTION = "kwg_write"

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _install_sqlite_hooks(engine: AsyncEngine, synchronous: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN is ours (see module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def create_engine(settings: Settings, *, url: str | None = None) -> AsyncEngine:
    """Create the async engine for the configured database (nothing connects until first use)."""
    db_url = url or settings.resolved_database_url
    if db_url.startswith("sqlite"):
        path = db_url.split("///", 1)[1] if "///" in db_url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(db_url)
        _install_sqlite_hooks(engine, "FULL")
        return engine
    return create_async_engine(
        db_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=False,
    )


async def begin_write(engine: AsyncEngine) -> AsyncConnection:
    """A connection marked for writing; the caller begins it (``async with conn.begin()``)."""
    conn = await engine.connect()
    await conn.execution_options(**{WRITE_OPTION: True})
    return conn


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


async def ping(engine: AsyncEngine) -> None:
    """Raise if the database does not answer a trivial query (readiness)."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
