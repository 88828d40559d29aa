"""Test fixtures: the store on both databases, rolled back after every test; the app over ASGI."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.app import create_app
from gateway.settings import Settings
from gateway.store.db import create_engine
from gateway.store.migrate import upgrade
from gateway.store.repository import SqlFhirRepository
from gateway.validation import validate_resource
from tests.processes import scratch_postgres_database
from tests.servers import IN_CI, find_postgres

DIALECTS = ("sqlite", "postgresql")
_POSTGRES = find_postgres()


def pytest_report_header(config: pytest.Config) -> list[str]:
    pg = _POSTGRES.url.split("@")[-1] if _POSTGRES.url else f"NOT AVAILABLE: {_POSTGRES.reason}"
    return [f"kwg: PostgreSQL {pg}; CI={IN_CI}"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _POSTGRES.url is None and IN_CI:
        raise pytest.UsageError(f"PostgreSQL is required under CI: {_POSTGRES.reason}")


@pytest.fixture(scope="session")
def tmp_home(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("kwg-home"))


def _settings(home: str, url: str) -> Settings:
    return Settings(home=home, database_url=url, auth="off")  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def sqlite_url(tmp_home: str) -> str:
    url = f"sqlite+aiosqlite:///{tmp_home}/test.db"
    upgrade(_settings(tmp_home, url), url=url)
    return url


@pytest.fixture(scope="session")
def postgres_url(tmp_home: str) -> Iterator[str]:
    """A fresh database on the PostgreSQL server for this test session, migrated, dropped afterwards."""
    if _POSTGRES.url is None:
        pytest.skip(f"PostgreSQL tests not run: {_POSTGRES.reason}")
    import asyncio

    admin_url = _POSTGRES.url
    name = f"kwg_test_{uuid.uuid4().hex[:10]}"

    async def _admin(sql: str) -> None:
        engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(sql))
        await engine.dispose()

    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    upgrade(_settings(tmp_home, url), url=url)
    yield url
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=DIALECTS)
def db_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture(params=DIALECTS)
def fresh_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, migrated database for one test, for code that commits on connections of its own (the sync engine,
    the console's directory of destinations): nothing rolls back, so nothing is shared with other tests."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/fresh.db"
        upgrade(_settings(str(tmp_path), url), url=url)
        yield url
        return
    if _POSTGRES.url is None:
        pytest.skip(f"PostgreSQL tests not run: {_POSTGRES.reason}")
    with scratch_postgres_database(_POSTGRES.url) as url:
        upgrade(_settings(str(tmp_path), url), url=url)
        yield url


@pytest.fixture
def settings(db_url: str, tmp_home: str) -> Settings:
    return _settings(tmp_home, db_url)


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(settings)
    yield eng
    await eng.dispose()


@pytest.fixture
async def repo(engine: AsyncEngine) -> AsyncIterator[SqlFhirRepository]:
    """A repository bound to one connection whose transaction is rolled back after the test."""
    async with engine.connect() as conn:
        await conn.execution_options(kwg_write=True)
        trans = await conn.begin()
        try:
            yield SqlFhirRepository(engine, validator=validate_resource, conn=conn)
        finally:
            await trans.rollback()


@pytest.fixture
async def client(settings: Settings, repo: SqlFhirRepository) -> AsyncIterator[httpx.AsyncClient]:
    """The app over ASGI, its repository the rolled-back one above."""
    app = create_app(settings)
    app.state.repository = repo
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
        yield c
    await app.state.engine.dispose()


@pytest.fixture(autouse=True)
def _no_env_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("KWG_") and not key.startswith("KWG_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("KWG_AUTH", "off")  # tests of other features; tests/security turns it on explicitly
