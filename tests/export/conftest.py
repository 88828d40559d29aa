"""Fixtures of the bulk export tests: a fresh database per module on both dialects (jobs commit: no rollback), the
app over ASGI with its audit trail running, and helpers to write resources and run a job as the worker would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete

from gateway.app import create_app
from gateway.export.tables import export_job
from gateway.settings import Settings
from gateway.store.migrate import upgrade
from gateway.store.models import INDEX_TABLES, outbox, resource, resource_version
from tests.conftest import _POSTGRES, DIALECTS
from tests.processes import scratch_postgres_database

JSON = {"Content-Type": "application/fhir+json"}
ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


@pytest.fixture(scope="module", params=DIALECTS)
def export_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("export")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{home}/export.db"
        upgrade(Settings(home=home, database_url=url), url=url)  # type: ignore[arg-type]
        yield url
        return
    if _POSTGRES.url is None:
        pytest.skip(f"PostgreSQL tests not run: {_POSTGRES.reason}")
    with scratch_postgres_database(_POSTGRES.url) as url:
        upgrade(Settings(home=home, database_url=url), url=url)  # type: ignore[arg-type]
        yield url


@pytest.fixture
def export_settings(export_db_url: str, tmp_path: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        home=tmp_path, database_url=export_db_url, auth="off", export_page_size=10, export_file_resources=7
    )


@pytest.fixture
async def export_app(export_settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(export_settings)
    async with app.state.engine.begin() as conn:  # each test starts from an empty store
        for table in (export_job, outbox, *INDEX_TABLES, resource_version, resource):
            await conn.execute(delete(table))
    await app.state.audit.start()
    yield app
    await app.state.audit.stop()
    await app.state.engine.dispose()


@pytest.fixture
async def api(export_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=export_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
        yield c


async def put(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    answer = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=JSON)
    assert answer.status_code in (200, 201), answer.text
    body: dict[str, Any] = answer.json()
    return body


def patient(pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "birthDate": "2010-04-01", "gender": "female"}


def observation(oid: str, pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"text": "register rating"},
        "subject": {"reference": f"Patient/{pid}"},
    }


def organization(oid: str) -> dict[str, Any]:
    return {"resourceType": "Organization", "id": oid, "name": f"Organisation {oid}"}


def group(gid: str, members: list[str]) -> dict[str, Any]:
    return {
        "resourceType": "Group",
        "id": gid,
        "type": "person",
        "actual": True,
        "member": [{"entity": {"reference": f"Patient/{m}"}} for m in members],
    }
