"""Nothing lost, nothing twice, with real processes and real faults.

``kwg serve`` on PostgreSQL, a private Redis as broker, ``kwg worker`` (with its relay) and ``kwg beat`` as
processes, and the destination over HTTP in another process. While writes go on: the destination answers 500, 429
and a timeout; the worker is killed with SIGKILL mid-delivery and another started; Redis is stopped for 30 seconds
and started again (empty). Afterwards every change is at the destination exactly once, in order per patient.
A second test sends to another ``kwg serve`` as the destination FHIR server.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import _POSTGRES
from tests.processes import KWG, running_gateway, scratch_postgres_database
from tests.servers import IN_CI, _free_port, _wait_port

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(
    (_POSTGRES.url is None or REDIS is None) and not IN_CI,
    reason="needs PostgreSQL and redis-server (installed binaries)",
)
JSON = {"Content-Type": "application/fhir+json"}


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)  # the worker's relay child too
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def redis_server(port: int, log: Path) -> subprocess.Popen[bytes]:
    assert REDIS is not None
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    assert _wait_port(port), "redis-server did not start"
    return proc


def wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def write_versions(api: str, patients: range, versions: range) -> None:
    with httpx.Client(timeout=30) as client:
        for v in versions:
            for n in patients:
                pid = f"yp-{n}"
                body = {"resourceType": "Patient", "id": pid, "name": [{"family": f"v{v}"}]}
                assert client.put(f"{api}/Patient/{pid}", json=body, headers=JSON).status_code in (200, 201)


def effective_versions(destination: str) -> dict[str, list[str]]:
    log = httpx.get(f"{destination}/_log", timeout=10).json()["changes"]
    out: dict[str, list[str]] = {}
    for change in log:
        out.setdefault(change["url"], []).append(change["resource"]["name"][0]["family"])
    return out


async def attempt_outcomes(db: str) -> dict[str, set[int | None]]:
    """Outcome → the HTTP statuses seen with it, from the delivery log."""
    engine = create_async_engine(db)
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT DISTINCT outcome, status FROM delivery_attempt"))).all()
    await engine.dispose()
    out: dict[str, set[int | None]] = {}
    for outcome, status in rows:
        out.setdefault(str(outcome), set()).add(status)
    return out


def base_env(home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KWG_")}
    env["KWG_HOME"] = home
    return env


def test_changes_arrive_exactly_once_in_order_through_faults(tmp_path: Path) -> None:
    assert _POSTGRES.url is not None
    home = tempfile.mkdtemp(prefix="kwg-sync-")
    redis_port, dest_port = _free_port(), _free_port()
    destinations = tmp_path / "destinations.toml"
    destinations.write_text(
        "[[destination]]\n"
        'name = "fake-record"\nconnector = "fhir"\n'
        f'endpoint = "http://127.0.0.1:{dest_port}/fhir"\nrecipient = "nhs-provider"\n'
        "lanes = 4\nbatch_size = 10\ntimeout_seconds = 6\nbackoff_base_seconds = 0.2\nbackoff_max_seconds = 2\n"
        "max_attempts = 100\n"
    )
    env = base_env(home) | {
        "KWG_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "KWG_DESTINATIONS_FILE": str(destinations),
        "KWG_LANE_LEASE_SECONDS": "3",
        "KWG_SWEEP_INTERVAL": "1",
        "KWG_LOG_LEVEL": "WARNING",
    }
    destination = f"http://127.0.0.1:{dest_port}"
    redis = redis_server(redis_port, tmp_path / "redis.log")
    try:
        with (
            scratch_postgres_database(_POSTGRES.url) as db,
            process(
                [sys.executable, "-m", "connectors.fake.fhir_server", "--port", str(dest_port)],
                env,
                tmp_path / "destination.log",
            ),
        ):
            env["KWG_DATABASE_URL"] = db
            assert _wait_port(dest_port)
            with running_gateway(db, env=env) as gateway:
                api = gateway.url
                worker_args = [KWG, "worker", "--concurrency", "2", "--loglevel", "WARNING"]
                with process([KWG, "beat", "--loglevel", "WARNING"], env, tmp_path / "beat.log"):
                    with process(worker_args, env, tmp_path / "worker1.log") as worker:
                        # Faults first: 500, 429, and a timeout (the fake holds the answer longer than 6 s).
                        httpx.post(f"{destination}/_faults", json={"plan": ["500", "429:1", "timeout"]})
                        write_versions(api, range(20), range(1, 3))

                        def faults_met() -> bool:
                            statuses = asyncio.run(attempt_outcomes(db)).get("retry", set())
                            return {500, 429} <= statuses

                        wait_for(faults_met, 90, "the 500 and the 429 to be met and recorded")
                        # Slow the destination down and kill the worker mid-delivery.
                        httpx.post(f"{destination}/_faults", json={"delay": 0.3})
                        write_versions(api, range(20), range(3, 4))
                        time.sleep(1.5)
                        stop(worker, signal.SIGKILL)
                    httpx.post(f"{destination}/_faults", json={"delay": 0.0})
                    with process(worker_args, env, tmp_path / "worker2.log"):
                        # Redis down for 30 s while writes go on; then back, empty.
                        redis.terminate()
                        redis.wait()
                        started = time.monotonic()
                        write_versions(api, range(20), range(4, 6))
                        time.sleep(max(0.0, 30 - (time.monotonic() - started)))
                        redis = redis_server(redis_port, tmp_path / "redis.log")
                        write_versions(api, range(20), range(6, 7))
                        expected = [f"v{v}" for v in range(1, 7)]

                        def complete() -> bool:
                            got = effective_versions(destination)
                            return len(got) == 20 and all(len(v) >= 6 for v in got.values())

                        wait_for(complete, 120, "every version at the destination")
                        time.sleep(2)  # anything still in flight would show as a duplicate now
                        got = effective_versions(destination)
                        assert httpx.get(f"{destination}/_log").json()["plan"] == []  # every fault was met
                        assert sorted(got) == sorted(f"Patient/yp-{n}" for n in range(20))
                        for url, versions in got.items():
                            assert versions == expected, f"{url}: {versions}"
            outcomes = asyncio.run(attempt_outcomes(db))
            assert {500, 429} <= outcomes["retry"], outcomes  # 500, 429 and the timeout were met ...
            assert outcomes["delivered"] == {200}  # ... and overcome
            status = subprocess.run(
                [KWG, "deliveries", "list", "--status", "dead"], env=env, capture_output=True, text=True, check=True
            )
            assert len(status.stdout.strip().splitlines()) == 1, status.stdout  # the header only: no dead letters
    finally:
        redis.terminate()
        redis.wait()


def test_a_second_gateway_is_a_destination(tmp_path: Path) -> None:
    """Embedded broker (no Redis): ``kwg serve`` starts its own worker; the destination is another gateway."""
    with running_gateway(env={"KWG_LOG_LEVEL": "WARNING"}) as receiver:
        destinations = tmp_path / "destinations.toml"
        destinations.write_text(
            '[[destination]]\nname = "receiver"\nconnector = "fhir"\n'
            f'endpoint = "{receiver.url}"\nrecipient = "local-authority"\n'
        )
        with running_gateway(env={"KWG_DESTINATIONS_FILE": str(destinations)}) as sender:
            with httpx.Client(timeout=30) as client:
                for family in ("Khan", "Khan-Ali"):
                    body = {"resourceType": "Patient", "id": "amira", "name": [{"family": family}]}
                    assert client.put(f"{sender.url}/Patient/amira", json=body, headers=JSON).status_code in (200, 201)
                condition = {
                    "resourceType": "Condition",
                    "id": "c1",
                    "code": {"text": "Autism"},
                    "subject": {"reference": "Patient/amira"},
                }
                client.put(f"{sender.url}/Condition/c1", json=condition, headers=JSON)

                def arrived() -> bool:
                    got = client.get(f"{receiver.url}/Patient/amira")
                    return got.status_code == 200 and got.json()["name"][0]["family"] == "Khan-Ali"

                wait_for(arrived, 60, "the patient at the receiving gateway")
                history = client.get(f"{receiver.url}/Patient/amira/_history").json()
                assert history["total"] == 2  # both versions, once each
                # A local authority does not receive clinical detail.
                assert client.get(f"{receiver.url}/Condition/c1").status_code == 404
