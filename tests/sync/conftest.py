"""Fixtures of the sync engine tests: a fresh database per test module (the engine commits: no rollback here), the
fake FHIR destination in-process, and destinations pointing at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.fake.fhir_server import create_app as create_fake_destination
from connectors.fhir.config import FhirConfig
from connectors.fhir.connector import FhirConnector
from gateway.settings import Settings
from gateway.store.db import create_engine
from gateway.store.migrate import upgrade
from gateway.store.models import INDEX_TABLES, outbox, resource, resource_version
from gateway.store.repository import SqlFhirRepository
from gateway.sync.destinations import Destination
from gateway.sync.sharing import Recipient
from gateway.sync.tables import delivery, delivery_attempt, delivery_lane
from tests.conftest import _POSTGRES, DIALECTS
from tests.processes import scratch_postgres_database


@pytest.fixture(scope="module", params=DIALECTS)
def sync_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("sync")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{home}/sync.db"
        upgrade(Settings(home=home, database_url=url), url=url)  # type: ignore[arg-type]
        yield url
        return
    if _POSTGRES.url is None:
        pytest.skip(f"PostgreSQL tests not run: {_POSTGRES.reason}")
    with scratch_postgres_database(_POSTGRES.url) as url:
        upgrade(Settings(home=home, database_url=url), url=url)  # type: ignore[arg-type]
        yield url


@pytest.fixture
async def sync_engine(sync_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(home=tmp_path_factory.mktemp("h"), database_url=sync_db_url))  # type: ignore[arg-type]
    async with engine.begin() as conn:  # each test starts from an empty store
        for table in (delivery_attempt, delivery, delivery_lane, outbox, *INDEX_TABLES, resource_version, resource):
            await conn.execute(delete(table))
    yield engine
    await engine.dispose()


@pytest.fixture
def store(sync_engine: AsyncEngine) -> SqlFhirRepository:
    return SqlFhirRepository(sync_engine)


@pytest.fixture
def fake_destination() -> httpx.ASGITransport:
    return httpx.ASGITransport(app=create_fake_destination())


@pytest.fixture
async def destination_client(fake_destination: httpx.ASGITransport) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=fake_destination, base_url="http://destination.test") as client:
        yield client


def destination(
    name: str = "shared-record", recipient: Recipient = Recipient.NHS_PROVIDER, **extra: object
) -> Destination:
    return Destination.model_validate(
        {
            "name": name,
            "connector": "fhir",
            "endpoint": "http://destination.test/fhir",
            "recipient": recipient,
            "lanes": 4,
            "batch_size": 20,
            "backoff_base_seconds": 0.01,
            "backoff_max_seconds": 0.05,
            **extra,
        }
    )


@pytest.fixture
async def connector(fake_destination: httpx.ASGITransport) -> AsyncIterator[FhirConnector]:
    c = FhirConnector(FhirConfig(endpoint="http://destination.test/fhir"), transport=fake_destination)  # type: ignore[arg-type]
    yield c
    await c.aclose()
