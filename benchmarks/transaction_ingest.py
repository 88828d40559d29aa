"""Transaction ingest: resources per second through ``POST /fhir`` with validation, on SQLite or PostgreSQL.

Each transaction Bundle holds young people as a Patient, an EpisodeOfCare and an Encounter linked by
``urn:uuid`` references (so the run includes reference rewriting, structural validation, indexing and the
outbox). The app runs in this process over ASGI (no sockets), so the figure is the gateway's own cost.

    .venv/bin/python -m benchmarks.transaction_ingest --db sqlite
    .venv/bin/python -m benchmarks.transaction_ingest --db postgresql --entries 1000 --rounds 5
    .venv/bin/python -m benchmarks.transaction_ingest --db sqlite --profile   # cProfile, top 30 by own time

PostgreSQL: a throwaway database is created on ``--postgres`` (default the local server) and dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
import uuid
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.app import create_app
from gateway.settings import Settings
from gateway.store.migrate import upgrade

NHS = "https://fhir.nhs.uk/Id/nhs-number"
DEFAULT_POSTGRES = "postgresql+asyncpg://root@127.0.0.1:5432/test"


def young_person(n: int) -> list[dict[str, Any]]:
    """Three entries: Patient, EpisodeOfCare and Encounter, the last two pointing at the first by urn:uuid."""
    p, e = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    nhs = f"9{n:09d}"
    return [
        {
            "fullUrl": p,
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": NHS, "value": nhs}],
                "name": [{"family": f"Family{n}", "given": ["Alex", "Sam"]}],
                "gender": "female" if n % 2 else "male",
                "birthDate": f"20{10 + n % 8:02d}-0{1 + n % 9}-1{n % 10}",
                "address": [{"line": [f"{n} High Street"], "city": "Leeds", "postalCode": "LS1 4AP"}],
            },
            "request": {"method": "POST", "url": "Patient"},
        },
        {
            "fullUrl": e,
            "resource": {
                "resourceType": "EpisodeOfCare",
                "status": "active",
                "type": [{"coding": [{"system": "https://example.org/keyworking", "code": "keyworking"}]}],
                "patient": {"reference": p},
                "period": {"start": "2026-01-05"},
            },
            "request": {"method": "POST", "url": "EpisodeOfCare"},
        },
        {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
                "subject": {"reference": p},
                "episodeOfCare": [{"reference": e}],
                "period": {"start": "2026-02-01T10:00:00Z", "end": "2026-02-01T11:00:00Z"},
            },
            "request": {"method": "POST", "url": "Encounter"},
        },
    ]


def transaction(entries: int, offset: int, *, conditional: bool = False) -> bytes:
    """A Bundle of young people; ``conditional``: Patients by conditional update on the NHS number (idempotent)."""
    people = [young_person(offset + i) for i in range((entries + 2) // 3)]
    if conditional:
        for person in people:
            nhs = person[0]["resource"]["identifier"][0]["value"]
            person[0]["request"] = {"method": "PUT", "url": f"Patient?identifier={NHS}|{nhs}"}
    flat = [entry for person in people for entry in person][:entries]
    return orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": flat})


async def _admin(url: str, sql: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


async def run(url: str, home: str, entries: int, rounds: int, profile: bool, conditional: bool) -> list[float]:
    settings = Settings(home=home, database_url=url, auth="off")  # type: ignore[arg-type]
    upgrade(settings, url=url)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench.test", timeout=600) as client:
        rates = await drive(client, entries, rounds, profile, conditional)
    await app.state.engine.dispose()
    return rates


async def drive(
    client: httpx.AsyncClient, entries: int, rounds: int, profile: bool, conditional: bool = False
) -> list[float]:
    """POST ``rounds`` transactions of ``entries`` entries (after a small warm-up); resources/s of each."""
    rates: list[float] = []
    profiler = cProfile.Profile() if profile else None
    offset = int(time.time()) % 100_000 * 1000  # distinct NHS numbers across runs against one server
    warm = await client.post("/fhir", content=transaction(30, 0), headers={"Content-Type": "application/fhir+json"})
    warm.raise_for_status()
    for r in range(rounds):
        body = transaction(entries, offset + (r + 1) * entries, conditional=conditional)
        if profiler is not None:
            profiler.enable()
        started = time.perf_counter()
        response = await client.post("/fhir", content=body, headers={"Content-Type": "application/fhir+json"})
        elapsed = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
        response.raise_for_status()
        rates.append(entries / elapsed)
        print(f"  round {r + 1}: {entries} resources in {elapsed:.2f} s = {entries / elapsed:,.0f} resources/s")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    return rates


async def _remote(url: str, entries: int, rounds: int, conditional: bool) -> list[float]:
    async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=600) as client:
        return await drive(client, entries, rounds, False, conditional)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin URL of the PostgreSQL server")
    parser.add_argument("--entries", type=int, default=1000, help="entries per transaction Bundle")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the timed rounds")
    parser.add_argument("--conditional", action="store_true", help="Patients by conditional update (PUT Type?...)")
    parser.add_argument("--url", help="drive a running gateway (e.g. http://127.0.0.1:8080) instead of in-process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kwg-bench-") as home:
        if args.url:
            rates = asyncio.run(_remote(args.url, args.entries, args.rounds, args.conditional))
        elif args.db == "sqlite":
            url = f"sqlite+aiosqlite:///{home}/bench.db"
            rates = asyncio.run(run(url, home, args.entries, args.rounds, args.profile, args.conditional))
        else:
            name = f"kwg_bench_{uuid.uuid4().hex[:10]}"
            asyncio.run(_admin(args.postgres, f'CREATE DATABASE "{name}"'))
            try:
                url = args.postgres.rsplit("/", 1)[0] + f"/{name}"
                rates = asyncio.run(run(url, home, args.entries, args.rounds, args.profile, args.conditional))
            finally:
                asyncio.run(_admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    best, median = max(rates), sorted(rates)[len(rates) // 2]
    where = args.url or args.db
    print(f"{where}: transaction ingest with validation, {args.entries}-entry Bundles: median {median:,.0f}")
    print(f"{where}: resources/s (best {best:,.0f}); target >= 750 resources/s")


if __name__ == "__main__":
    main()
