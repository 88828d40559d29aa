"""Bulk export ($export) throughput and memory: the export worker against a plain dump, same data, same run.

    .venv/bin/python -m benchmarks.bulk_export                         # 1,000,000 resources on SQLite
    .venv/bin/python -m benchmarks.bulk_export --resources 100000
    .venv/bin/python -m benchmarks.bulk_export --url postgresql+asyncpg://root@127.0.0.1:5432/test

1. Load: N small resources (half Patients, half Observations, ~200 bytes each) written straight into the
   ``resource`` table (SQLite: executemany; PostgreSQL: COPY), in a migrated scratch database (with ``--url``: a new
   database on that server, dropped afterwards). Only the rows a system-level export reads are written.
2. Export: a system-level job (``kwg.bulk_export``'s ``run_export``) in a child process: resources/s and the
   child's peak RSS (``VmHWM``, else ``getrusage``), so the load does not count.
3. Baseline, in a child process too: a plain streamed ``SELECT`` of the same rows, each parsed and re-serialised
   with orjson and written as a line (what an exporter that decodes every resource does).

Goals: ≥ 20,000 resources/s and peak memory ≤ 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource as rusage
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.auth import DEVELOPMENT_CALLER
from gateway.export import jobs
from gateway.export.run import job_folder, run_export
from gateway.export.scope import Kind
from gateway.settings import Settings
from gateway.store.db import create_engine
from gateway.store.migrate import upgrade
from gateway.store.models import resource
from gateway.store.timeutil import now_us

BATCH = 20_000
GOAL_RATE = 20_000
GOAL_MB = 300


def row(n: int, stamp: int) -> tuple[str, str, int, int, bool, bytes]:
    if n % 2:
        body: dict[str, Any] = {
            "resourceType": "Observation",
            "id": f"o{n:08d}",
            "meta": {"versionId": "1"},
            "status": "final",
            "code": {"text": "register rating"},
            "subject": {"reference": f"Patient/p{n - 1:08d}"},
        }
    else:
        body = {
            "resourceType": "Patient",
            "id": f"p{n:08d}",
            "meta": {"versionId": "1"},
            "gender": "female",
            "birthDate": "2010-04-01",
        }
    return body["resourceType"], body["id"], 1, stamp, False, orjson.dumps(body)


async def load(settings: Settings, count: int) -> float:
    engine = create_engine(settings)
    stamp = now_us()
    started = time.perf_counter()
    columns = ["res_type", "res_id", "version_id", "last_updated", "deleted", "content"]
    try:
        async with engine.begin() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            for start in range(0, count, BATCH):
                rows = [row(n, stamp) for n in range(start, min(count, start + BATCH))]
                if conn.dialect.name == "postgresql":
                    await driver.copy_records_to_table("resource", records=rows, columns=columns)
                else:
                    await conn.execute(resource.insert(), [dict(zip(columns, r, strict=True)) for r in rows])
    finally:
        await engine.dispose()
    return time.perf_counter() - started


async def new_job(settings: Settings) -> str:
    engine = create_engine(settings)
    job_id = str(uuid.uuid4())
    try:
        await jobs.create(
            engine,
            job_id,
            DEVELOPMENT_CALLER,
            Kind.SYSTEM,
            ("Observation", "Patient"),
            since=None,
            group_id=None,
            request_url="bench/$export",
        )
    finally:
        await engine.dispose()
    return job_id


async def child_export(settings: Settings, job_id: str) -> dict[str, Any]:
    engine = create_engine(settings)
    started = time.perf_counter()
    try:
        outcome = await run_export(engine, settings, job_id)
        job = await jobs.load(engine, job_id)
    finally:
        await engine.dispose()
    assert outcome == "done" and job is not None, outcome
    return {"seconds": time.perf_counter() - started, "count": sum(f.count for f in job.output)}


async def child_baseline(settings: Settings, out: Path) -> dict[str, Any]:
    engine = create_engine(settings)
    started = time.perf_counter()
    count = 0
    try:
        async with engine.connect() as conn:
            query = select(resource.c.content).where(resource.c.deleted.is_(False)).order_by(resource.c.pk)
            result = await conn.stream(query.execution_options(yield_per=1000))
            with open(out, "wb") as handle:
                async for (content,) in result:
                    handle.write(orjson.dumps(orjson.loads(content)) + b"\n")
                    count += 1
    finally:
        await engine.dispose()
    return {"seconds": time.perf_counter() - started, "count": count}


def peak_rss_mb() -> float:
    """This process's peak resident memory. ``VmHWM`` where there is /proc: ``getrusage``'s ``ru_maxrss`` carries
    the parent's peak over ``fork``/``exec``, so a child started by the loading process would report the load."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return rusage.getrusage(rusage.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> None:
    settings = Settings(home=args.home, database_url=args.db, auth="off")  # type: ignore[arg-type]
    if args.child == "export":
        figures = asyncio.run(child_export(settings, args.job))
    else:
        figures = asyncio.run(child_baseline(settings, Path(args.home) / "baseline.ndjson"))
    figures["max_rss_mb"] = peak_rss_mb()
    print(json.dumps(figures))


def run_child(kind: str, db: str, home: str, job: str = "") -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bulk_export", "--child", kind, "--db", db, "--home", home]
    done = subprocess.run([*command, "--job", job], capture_output=True, text=True, check=True)
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def bench(db: str, home: str, count: int) -> None:
    settings = Settings(home=home, database_url=db, auth="off")  # type: ignore[arg-type]
    upgrade(settings, url=db)
    seconds = asyncio.run(load(settings, count))
    print(f"loaded {count:,} resources in {seconds:.1f} s ({db.split(':')[0]})")
    job_id = asyncio.run(new_job(settings))
    ours = run_child("export", db, home, job_id)
    size = sum(f.stat().st_size for f in job_folder(settings, job_id).iterdir())
    base = run_child("baseline", db, home)
    assert ours["count"] == base["count"] == count, (ours, base)
    rate, base_rate = count / ours["seconds"], count / base["seconds"]
    print(f"$export worker : {rate:>10,.0f} resources/s  peak RSS {ours['max_rss_mb']:6.0f} MB  ({size / 1e6:.0f} MB)")
    print(f"baseline dump  : {base_rate:>10,.0f} resources/s  peak RSS {base['max_rss_mb']:6.0f} MB")
    print(f"ratio          : {rate / base_rate:.2f}x the baseline")
    print(
        f"goals          : >= {GOAL_RATE:,} resources/s {'MET' if rate >= GOAL_RATE else 'MISSED'}; "
        f"<= {GOAL_MB} MB {'MET' if ours['max_rss_mb'] <= GOAL_MB else 'MISSED'}"
    )


async def _admin(url: str, sql: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--url", help="a PostgreSQL server URL: a scratch database is made there (default: SQLite)")
    parser.add_argument("--child", choices=["export", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="kwg-bench-export-") as home:
        if not args.url:
            bench(f"sqlite+aiosqlite:///{home}/bench.db", home, args.resources)
            return
        name = f"kwg_bench_{uuid.uuid4().hex[:8]}"
        asyncio.run(_admin(args.url, f'CREATE DATABASE "{name}"'))
        try:
            bench(args.url.rsplit("/", 1)[0] + f"/{name}", home, args.resources)
        finally:
            asyncio.run(_admin(args.url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
