"""Sync throughput and relay lag, with real processes: PostgreSQL, Redis, ``kwg worker``, and the destination FHIR
server in another process.

    .venv/bin/python -m benchmarks.sync                      # 10,000 resources, about a minute
    .venv/bin/python -m benchmarks.sync --resources 2000 --lag-seconds 5

1. Throughput: a ``kwg worker`` with two processes and ``kwg beat`` are started and deliver a warm-up batch. Then
   a. 10,000 changed resources (Patients, Encounters, EpisodeOfCares and CareTeams of 2,000 young people) are
      committed in one transaction and delivered to the fake FHIR destination (``connectors.fake.fhir_server``) as
      transaction Bundles. Figure: resources/s from that commit to the last delivery: the same work, from the same
      starting point (changes in the store), as the naive sender's.
   b. Another 10,000 are committed 1,000 at a time while they are delivered. Figure: resources/s from the first
      commit to the last delivery (the writing shares the machine with the delivery).
2. Baseline, measured in the same run: a naive sender that PUTs the same resources one request each, in order,
   to the same destination (one connection, keep-alive). The target is ≥ 5× it.
3. Relay lag while the API takes 200 writes/s through ``kwg serve``: for each change, from its commit (outbox
   ``created_at``) to its delivery row (relayed) and to its arrival (``finished_at``); p50/p99. Target p99 ≤ 1 s.

Targets (issue 4): ≥ 1,000 resources/s with two workers; relay lag p99 ≤ 1 s; ≥ 5× the naive sender.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.transaction_ingest import DEFAULT_POSTGRES, _admin
from gateway.settings import Settings
from gateway.store.db import create_engine
from gateway.store.migrate import upgrade
from gateway.store.repository import SqlFhirRepository

KWG = str(Path(sys.executable).with_name("kwg"))
DEFAULT_REDIS = "redis://127.0.0.1:6379/13"
#: Changes delivered before the measurement starts (the worker processes are up and warm).
WARM_UP = 200


#: Servers on this machine whose CPU the throughput runs report too (their processes by name).
SHARED = ["PostgreSQL", "Redis"]


async def shared_cpu(engine: AsyncEngine) -> list[float]:
    """CPU seconds of PostgreSQL working for this benchmark (the backends of its database and the server's own
    background processes; other databases' backends, e.g. a test run's, are left out) and of Redis."""
    async with engine.connect() as conn:
        pids = (
            await conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() OR backend_type <> 'client backend'"
                )
            )
        ).scalars()
        postgres = sum(pid_cpu(int(pid)) for pid in pids)
    return [postgres, named_cpu("redis-server")]


def pid_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def names_of_processes() -> list[str]:
    """The processes whose CPU the throughput runs report, in the order they are started."""
    return ["destination", "worker (and its relay)", "beat"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def resources(n: int, tag: str) -> list[dict[str, Any]]:
    """``n`` resources: per young person a Patient, two Encounters, an EpisodeOfCare and a CareTeam."""
    out: list[dict[str, Any]] = []
    person = 0
    while len(out) < n:
        pid = f"{tag}-yp-{person}"
        ref = {"reference": f"Patient/{pid}"}
        out.append({"resourceType": "Patient", "id": pid, "name": [{"family": f"Family{person}"}], "gender": "female"})
        for k in range(2):
            out.append(
                {
                    "resourceType": "Encounter",
                    "id": f"{pid}-e{k}",
                    "status": "finished",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
                    "subject": ref,
                    "period": {"start": f"2026-11-0{k + 1}T10:00:00Z"},
                }
            )
        out.append({"resourceType": "EpisodeOfCare", "id": f"{pid}-kw", "status": "active", "patient": ref})
        out.append({"resourceType": "CareTeam", "id": f"{pid}-team", "status": "active", "subject": ref})
        person += 1
    return out[:n]


async def sent_and_bundles(engine: AsyncEngine) -> tuple[int, int]:
    """Deliveries made so far and the batches (transaction Bundles) they went in (one attempt time per batch)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT count(*), count(DISTINCT at) FROM delivery_attempt WHERE outcome = 'delivered'")
            )
        ).one()
    return int(row[0]), int(row[1])


async def wait_delivered(engine: AsyncEngine, expected: int, timeout: float) -> float:
    """Seconds until ``expected`` deliveries are delivered.

    It polls what stays small (events not yet relayed, deliveries still pending: both read from an index), not a
    count of the delivered rows, so that the polling itself costs the database little while the figure is taken;
    the delivered rows are counted once, at the end."""
    started = time.perf_counter()
    unfinished = text(
        "SELECT EXISTS (SELECT 1 FROM outbox WHERE relayed_at IS NULL) "
        "OR EXISTS (SELECT 1 FROM delivery WHERE status = 'pending')"
    )
    while time.perf_counter() - started < timeout:
        async with engine.connect() as conn:
            if not (await conn.execute(unfinished)).scalar():
                seconds = time.perf_counter() - started
                done = (await conn.execute(text("SELECT count(*) FROM delivery WHERE status = 'delivered'"))).scalar()
                if int(done or 0) < expected:
                    raise RuntimeError(f"{done} of {expected} delivered; nothing is pending (refused or withheld?)")
                return seconds
        await asyncio.sleep(0.02)
    raise RuntimeError(f"not all of {expected} delivered after {timeout} s")


async def naive(destination: str, repo: SqlFhirRepository, items: list[dict[str, Any]]) -> float:
    """The naive sender: for each change, read the resource and PUT it, one request each, in order: resources/s.
    It uses httpx, the HTTP client the connectors use (see :func:`naive_aiohttp` for a cheaper client)."""
    async with httpx.AsyncClient(timeout=30) as client:
        started = time.perf_counter()
        for r in items:
            stored = await repo.read(r["resourceType"], r["id"])
            response = await client.put(
                f"{destination}/fhir/{r['resourceType']}/{r['id']}",
                content=stored.content,
                headers={"Content-Type": "application/fhir+json"},
            )
            response.raise_for_status()
        return len(items) / (time.perf_counter() - started)


async def naive_aiohttp(destination: str, repo: SqlFhirRepository, items: list[dict[str, Any]]) -> float:
    """The same naive sender with aiohttp, whose requests cost less CPU than httpx's: the stricter baseline."""
    headers = {"Content-Type": "application/fhir+json"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        started = time.perf_counter()
        for r in items:
            stored = await repo.read(r["resourceType"], r["id"])
            url = f"{destination}/fhir/{r['resourceType']}/{r['id']}"
            async with session.put(url, data=stored.content, headers=headers) as response:
                await response.read()
                response.raise_for_status()
        return len(items) / (time.perf_counter() - started)


async def paced_writes(api: str, rate: int, seconds: float) -> int:
    """PUT Patients through the API at ``rate`` per second for ``seconds``; returns how many were written.

    The client is aiohttp, not httpx: on a two-core machine the load generator competes with the gateway for CPU,
    and aiohttp costs about a third of what httpx does per request."""
    written = 0
    interval = 1 / rate
    headers = {"Content-Type": "application/fhir+json"}
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def put(pid: str, body: bytes) -> None:
            async with session.put(f"{api}/Patient/{pid}", data=body, headers=headers) as response:
                await response.read()
                response.raise_for_status()

        started = time.perf_counter()
        pending: list[asyncio.Task[None]] = []
        while (now := time.perf_counter() - started) < seconds:
            pid = f"lag-{written}"
            body = orjson.dumps({"resourceType": "Patient", "id": pid, "name": [{"family": "Lag"}]})
            pending.append(asyncio.create_task(put(pid, body)))
            written += 1
            await asyncio.sleep(max(0.0, written * interval - now))
        await asyncio.gather(*pending)
    return written


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def lags(engine: AsyncEngine) -> tuple[list[float], list[float]]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT d.created_at - o.created_at, d.finished_at - o.created_at FROM delivery d "
                    "JOIN outbox o ON o.id = d.outbox_id WHERE o.res_id LIKE 'lag-%' AND d.status = 'delivered'"
                )
            )
        ).all()
    return [r[0] / 1e6 for r in rows], [r[1] / 1e6 for r in rows]


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) of the live processes in process group ``pgid`` (Linux /proc)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ..., utime (11), stime (12)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def named_cpu(command: str) -> float:
    """CPU seconds of the live processes called ``command`` (e.g. the local PostgreSQL server's backends)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name, rest = (entry / "stat").read_text().split(" (", 1)[1].rsplit(")", 1)
        except (OSError, ValueError, IndexError):
            continue
        if name == command:
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


async def run(args: argparse.Namespace, url: str, home: Path) -> None:
    dest_port, api_port = free_port(), free_port()
    destination = f"http://127.0.0.1:{dest_port}"
    (home / "destinations.toml").write_text(
        f'[[destination]]\nname = "bench"\nconnector = "fhir"\nendpoint = "{destination}/fhir"\n'
        f'recipient = "nhs-provider"\nlanes = 16\nbatch_size = {args.batch}\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KWG_")} | {
        "KWG_HOME": str(home),
        "KWG_DATABASE_URL": url,
        "KWG_BROKER_URL": args.redis,
        "KWG_DESTINATIONS_FILE": str(home / "destinations.toml"),
        "KWG_LOG_LEVEL": "WARNING",
        "KWG_RELAY_INTERVAL": "0.05",
        "KWG_AUTH": "off",
    }
    settings = Settings(home=home, database_url=url, auth="off")  # type: ignore[arg-type]
    upgrade(settings, url=url)
    engine = create_engine(settings)
    procs = [
        start([sys.executable, "-m", "connectors.fake.fhir_server", "--port", str(dest_port)], env, home / "d.log")
    ]
    try:
        wait_http(f"{destination}/fhir/metadata")
        repo = SqlFhirRepository(engine)
        # Start the worker and beat and let them deliver a warm-up batch, so that the figure is the engine's
        # steady rate, not the seconds Celery takes to boot.
        procs.append(start([KWG, "worker", "--concurrency", "2", "--loglevel", "WARNING"], env, home / "w.log"))
        procs.append(start([KWG, "beat", "--loglevel", "WARNING"], env, home / "b.log"))
        warm = resources(WARM_UP, "warm")
        await repo.create_many([(r, r["id"]) for r in warm])
        await wait_delivered(engine, len(warm), timeout=120)
        # 1a. throughput of committed changes: the changes are committed in one transaction and timed from that
        # commit to the last delivery, as the naive sender is timed on changes already in the store.
        stored = resources(args.resources, "stored")
        done_before = len(warm)
        await repo.create_many([(r, r["id"]) for r in stored])
        committed_cpu = [group_cpu(p.pid) for p in procs] + [
            *await shared_cpu(engine),
            time.process_time(),
            machine_cpu(),
        ]
        committed_seconds = await wait_delivered(engine, done_before + len(stored), timeout=600)
        committed_rate = len(stored) / committed_seconds
        sent, bundles = await sent_and_bundles(engine)
        committed_after = [group_cpu(p.pid) for p in procs] + [
            *await shared_cpu(engine),
            time.process_time(),
            machine_cpu(),
        ]
        committed_used = dict(
            zip(
                [*names_of_processes(), *SHARED, "this process", "whole machine"],
                map(float.__sub__, committed_after, committed_cpu),
                strict=True,
            )
        )
        done_before += len(stored)
        # 1b. throughput while the changes are written: from the first of ten commits of 1,000 changes each to the
        # last delivery (the writes share the machine with the delivery).
        items = resources(args.resources, "sync")
        names = names_of_processes()
        cpu_before = [group_cpu(p.pid) for p in procs] + [*await shared_cpu(engine), time.process_time(), machine_cpu()]
        started = time.perf_counter()
        for i in range(0, len(items), 1000):
            await repo.create_many([(r, r["id"]) for r in items[i : i + 1000]])
        seconds = time.perf_counter() - started + await wait_delivered(engine, done_before + len(items), timeout=600)
        sync_rate = len(items) / seconds
        cpu_after = [group_cpu(p.pid) for p in procs] + [*await shared_cpu(engine), time.process_time(), machine_cpu()]
        cpu_used = dict(
            zip(
                [*names, *SHARED, "this process (commits)", "whole machine"],
                map(float.__sub__, cpu_after, cpu_before),
                strict=True,
            )
        )
        # 2. the naive sender, same resources, same destination.
        if args.destination == "fake":
            httpx.post(f"{destination}/_reset")
        naive_rate = await naive(destination, repo, items[: min(len(items), args.naive)])
        if args.destination == "fake":
            httpx.post(f"{destination}/_reset")
        naive_lean_rate = await naive_aiohttp(destination, repo, items[: min(len(items), args.naive)])
        # 3. lag under 200 writes/s through the API.
        procs.append(
            start(
                [KWG, "serve", "--port", str(api_port), "--workers", "2", "--log-level", "warning"], env, home / "s.log"
            )
        )
        wait_http(f"http://127.0.0.1:{api_port}/health/ready", timeout=60)
        lag_before = [group_cpu(procs[-1].pid), time.process_time(), machine_cpu(), time.perf_counter()]
        written = await paced_writes(f"http://127.0.0.1:{api_port}/fhir", args.rate, args.lag_seconds)
        lag_after = [group_cpu(procs[-1].pid), time.process_time(), machine_cpu(), time.perf_counter()]
        api_cpu, client_cpu, lag_machine, lag_wall = map(float.__sub__, lag_after, lag_before)
        await wait_delivered(engine, done_before + len(items) + written, timeout=120)
        relayed, arrived = await lags(engine)
    finally:
        for p in reversed(procs):
            stop(p)
        await engine.dispose()
    print(f"{'measure':44} {'figure':>12} {'target':>12}")
    print("-" * 70)
    print(f"{'sync of committed changes, 2 worker processes':44} {committed_rate:>10,.0f}/s {'>= 1,000/s':>12}")
    for name, used in committed_used.items():
        print(f"{'  CPU ms per 1,000 resources, ' + name:44} {used * 1e6 / len(stored):>10,.0f}")
    print(f"{'  machine busy meanwhile':44} {committed_used['whole machine'] / committed_seconds:>9.2f} cores")
    print(f"{'  changes per transaction Bundle (mean, so far)':44} {sent / max(bundles, 1):>10,.0f}")
    print(f"{'sync while the changes are written':44} {sync_rate:>10,.0f}/s {'>= 1,000/s':>12}")
    for name, used in cpu_used.items():
        print(f"{'  CPU ms per 1,000 resources, ' + name:44} {used * 1e6 / len(items):>10,.0f}")
    print(f"{'  machine busy during the throughput run':44} {cpu_used['whole machine'] / seconds:>9.2f} cores")
    print(f"{'naive sender (one request per resource)':44} {naive_rate:>10,.0f}/s {'':>12}")
    print(f"{'naive sender, aiohttp client':44} {naive_lean_rate:>10,.0f}/s {'':>12}")
    for label, rate in (("committed changes", committed_rate), ("while written", sync_rate)):
        print(f"{'ratio, ' + label + ', to the naive sender':44} {rate / naive_rate:>11.1f}× {'>= 5×':>12}")
        print(f"{'ratio, ' + label + ', to the aiohttp one':44} {rate / naive_lean_rate:>11.1f}× {'>= 5×':>12}")
    api_rate = written / args.lag_seconds
    print(f"{'writes through the API during the lag test':44} {api_rate:>10,.0f}/s {'200/s':>12}")
    print(f"{'  CPU ms per API write, kwg serve (2 workers)':44} {api_cpu * 1000 / written:>10.1f}")
    print(f"{'  CPU ms per API write, the paced client':44} {client_cpu * 1000 / written:>10.1f}")
    print(f"{'  machine busy during the lag test':44} {lag_machine / lag_wall:>9.2f} cores")
    relay = f"{percentile(relayed, 50):.2f}/{percentile(relayed, 99):.2f} s"
    print(f"{'relay lag p50 / p99 (commit → relayed)':44} {relay:>12} {'p99 <= 1 s':>12}")
    e2e = f"{percentile(arrived, 50):>5.2f}/{percentile(arrived, 99):.2f} s"
    print(f"{'end-to-end p50 / p99 (commit → delivered)':44} {e2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin URL of the PostgreSQL server")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="the Celery broker")
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--naive", type=int, default=2_000, help="resources the naive sender sends (rate only)")
    parser.add_argument("--batch", type=int, default=100, help="changes per transaction Bundle")
    parser.add_argument("--rate", type=int, default=200, help="API writes per second during the lag test")
    parser.add_argument("--lag-seconds", type=float, default=15)
    parser.add_argument(
        "--destination",
        choices=["fake", "gateway"],
        default="fake",
        help="fake: the in-memory fake FHIR server; gateway: another kwg serve on its own PostgreSQL database",
    )
    args = parser.parse_args()
    name, dest_name = f"kwg_bench_{uuid.uuid4().hex[:10]}", f"kwg_bench_{uuid.uuid4().hex[:10]}"
    base = args.postgres.rsplit("/", 1)[0]
    asyncio.run(_admin(args.postgres, f'CREATE DATABASE "{name}"'))
    asyncio.run(_admin(args.postgres, f'CREATE DATABASE "{dest_name}"'))
    args.destination_db = f"{base}/{dest_name}"
    try:
        with tempfile.TemporaryDirectory(prefix="kwg-bench-sync-") as home:
            asyncio.run(run(args, f"{base}/{name}", Path(home)))
    finally:
        for db in (name, dest_name):
            asyncio.run(_admin(args.postgres, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
