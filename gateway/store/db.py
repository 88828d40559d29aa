"""Database engines for the two dialects the store runs on.

SQLite (embedded default): WAL journal, ``synchronous=FULL`` so a commit is on disk before we answer, foreign keys
on, a busy timeout, and explicit transaction control: read transactions are ``BEGIN`` (deferred, concurrent with
other readers), write transactions ``BEGIN IMMEDIATE`` (take the write lock up front, so two writers queue instead of
failing half way). PostgreSQL (production): asyncpg with a pool.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
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
        # No rollback when a connection goes back to the pool: SQLAlchemy ends its own transactions on close, and
        # the store's driver-level writes (gateway.store.bulk) commit or roll back in the same call; a reset would
        # be one more hop to aiosqlite's thread per checkout.
        engine = create_async_engine(db_url, pool_reset_on_return=None)
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


#: One asyncio lock per SQLite engine and event loop: whose turn it is to write (see :func:`write_turn`).
_TURNS: weakref.WeakKeyDictionary[Engine, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


@asynccontextmanager
async def write_turn(engine: AsyncEngine) -> AsyncIterator[None]:
    """On SQLite, wait for this process's other writers before ``BEGIN IMMEDIATE`` (nothing on PostgreSQL).

    SQLite has one writer at a time. A writer that finds the lock taken sleeps in SQLite's busy handler, in
    steps that grow to 100 ms whatever the holder's progress: eight concurrent writers made every write slower
    than one at a time. Queuing them on an asyncio lock hands the turn over as soon as the holder commits.
    Other processes still meet the busy timeout; so does a writer that waited longer than it (the lock is
    then bypassed rather than held forever, so a nested independent write fails as it did before, not hangs).
    """
    if not is_sqlite(engine):
        yield
        return
    turns = _TURNS.setdefault(engine.sync_engine, weakref.WeakKeyDictionary())
    loop = asyncio.get_running_loop()
    lock = turns.get(loop)
    if lock is None:
        lock = turns[loop] = asyncio.Lock()
    try:
        await asyncio.wait_for(lock.acquire(), SQLITE_BUSY_TIMEOUT_MS / 1000)
        acquired = True
    except TimeoutError:
        acquired = False
    try:
        yield
    finally:
        if acquired:
            lock.release()


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


async def ping(engine: AsyncEngine) -> None:
    """Raise if the database does not answer a trivial query (readiness)."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
