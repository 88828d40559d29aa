"""End to end with real processes: ``kwg serve`` and its Celery worker (embedded broker), on SQLite and
PostgreSQL. Kick-off → poll → manifest → download: the ndjson lines are exactly the stored resources asked for."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from gateway.auth import DEVELOPMENT_CALLER
from gateway.export import jobs
from gateway.export.scope import Kind
from gateway.settings import Settings
from gateway.store.db import create_engine
from tests.conftest import _POSTGRES, DIALECTS
from tests.export.conftest import ASYNC, JSON, group, observation, organization, patient
from tests.processes import running_gateway, scratch_postgres_database


@pytest.fixture(params=DIALECTS)
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None  # the embedded default under KWG_HOME
        return
    if _POSTGRES.url is None:
        pytest.skip(f"PostgreSQL tests not run: {_POSTGRES.reason}")
    with scratch_postgres_database(_POSTGRES.url) as url:
        yield url


def wait_for_manifest(status_url: str, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(status_url, timeout=10)
        if answer.status_code == 200:
            body: dict[str, Any] = answer.json()
            return body
        assert answer.status_code == 202, answer.text
        assert answer.headers["retry-after"]
        time.sleep(0.3)
    raise AssertionError(f"the export was not done after {timeout}s: {httpx.get(status_url).headers}")


def download(manifest: dict[str, Any]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for item in manifest["output"]:
        with httpx.stream("GET", item["url"], headers={"Accept": "application/fhir+ndjson"}, timeout=30) as answer:
            assert answer.status_code == 200
            lines = [line.encode() for line in answer.iter_lines() if line]
        assert len(lines) == item["count"]
        out.setdefault(item["type"], []).extend(lines)
    return out


def stored(api: str, res_type: str) -> dict[str, bytes]:
    bundle = httpx.get(f"{api}/{res_type}", params={"_count": "500"}, timeout=30).json()
    return {e["resource"]["id"]: orjson.dumps(e["resource"]) for e in bundle.get("entry", [])}


def test_export_through_a_real_worker(database: str | None) -> None:
    with running_gateway(database) as gateway:
        api = gateway.url
        resources = [patient(f"p{n:03d}") for n in range(40)]
        resources += [observation(f"o{n:03d}", f"p{n:03d}") for n in range(40)]
        resources += [organization("org1"), group("g1", ["p001", "p002", "p030"])]
        for r in resources:
            answer = httpx.put(f"{api}/{r['resourceType']}/{r['id']}", json=r, headers=JSON, timeout=30)
            assert answer.status_code == 201, answer.text

        kick_off = httpx.get(f"{api}/$export", params={"_type": "Patient,Observation,Organization"}, headers=ASYNC)
        assert kick_off.status_code == 202, kick_off.text
        manifest = wait_for_manifest(kick_off.headers["content-location"])
        assert manifest["requiresAccessToken"] is True
        exported = download(manifest)
        assert set(exported) == {"Patient", "Observation", "Organization"}
        for res_type, lines in exported.items():
            # the lines are the stored bytes: byte for byte what a read of each resource answers
            reads = stored(api, res_type)
            assert sorted(lines) == sorted(reads.values())

        members = httpx.get(f"{api}/Group/g1/$export", headers=ASYNC)
        assert members.status_code == 202
        by_type = download(wait_for_manifest(members.headers["content-location"]))
        assert {t: sorted(orjson.loads(x)["id"] for x in lines) for t, lines in by_type.items()} == {
            "Patient": ["p001", "p002", "p030"],
            "Observation": ["o001", "o002", "o030"],
        }

        status_url = httpx.get(f"{api}/Patient/$export", headers=ASYNC).headers["content-location"]
        assert httpx.delete(status_url).status_code == 202
        assert httpx.get(status_url).status_code == 404


def test_the_sweep_runs_a_job_whose_queueing_failed(database: str | None) -> None:
    """A job recorded but never queued (the broker was down at kick-off) is queued again by the worker's sweep once
    it has waited KWG_EXPORT_STALLED_SECONDS, and runs."""
    env = {"KWG_EXPORT_STALLED_SECONDS": "1", "KWG_SWEEP_INTERVAL": "1"}
    with running_gateway(database, env=env) as gateway:
        api = gateway.url
        for r in (patient("p001"), observation("o001", "p001")):
            assert (
                httpx.put(f"{api}/{r['resourceType']}/{r['id']}", json=r, headers=JSON, timeout=30).status_code == 201
            )
        settings = Settings(home=gateway.log.parent, database_url=database)  # type: ignore[arg-type]
        job_id = str(uuid.uuid4())

        async def record() -> None:  # what the kick-off writes before it queues the task (which failed here)
            engine = create_engine(settings)
            try:
                await jobs.create(
                    engine,
                    job_id,
                    DEVELOPMENT_CALLER,
                    Kind.PATIENT,
                    ("Patient", "Observation"),
                    since=None,
                    group_id=None,
                    request_url=f"{api}/Patient/$export",
                )
            finally:
                await engine.dispose()

        asyncio.run(record())
        exported = download(wait_for_manifest(f"{api}/$export-status/{job_id}", timeout=60))
        assert {t: [orjson.loads(x)["id"] for x in lines] for t, lines in exported.items()} == {
            "Patient": ["p001"],
            "Observation": ["o001"],
        }
