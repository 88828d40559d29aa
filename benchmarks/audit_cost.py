"""What auditing costs a read: reads per second with the audit trail on, and off (the baseline), same run.

    .venv/bin/python -m benchmarks.audit_cost                 # SQLite, in-process over ASGI, ~20 s
    .venv/bin/python -m benchmarks.audit_cost --db postgresql

Each read of ``Encounter/{id}`` queues an AuditEvent (client, organisation, purpose, the Encounter and its Patient);
the trail writes them in batches. Target (issue 6): audit must not double the cost of a read (ratio ≥ 0.5).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from benchmarks.transaction_ingest import DEFAULT_POSTGRES, _admin
from gateway.app import create_app
from gateway.settings import Settings
from gateway.store.migrate import upgrade

JSON = {"Content-Type": "application/fhir+json"}


async def reads_per_second(client: httpx.AsyncClient, ids: list[str], seconds: float, concurrency: int) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def reader(offset: int) -> None:
        nonlocal done
        n = offset
        while time.perf_counter() < stop:
            response = await client.get(f"/fhir/Encounter/{ids[n % len(ids)]}")
            assert response.status_code == 200, (response.status_code, response.text[:600])
            done += 1
            n += concurrency

    started = time.perf_counter()
    await asyncio.gather(*(reader(i) for i in range(concurrency)))
    return done / (time.perf_counter() - started)


async def run(url: str, home: str, seconds: float, concurrency: int) -> tuple[float, float, int, bool]:
    settings = Settings(  # type: ignore[arg-type]
        home=home,
        database_url=url,
        log_level="WARNING",
        auth="off",
        rate_limit_per_minute=0,  # no throttling: reads/s is the figure
    )
    upgrade(settings, url=url)
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench.test") as client:
        ids = []
        for n in range(500):
            pid, eid = f"p{n}", f"e{n}"
            await client.put(f"/fhir/Patient/{pid}", json={"resourceType": "Patient", "id": pid}, headers=JSON)
            body = {
                "resourceType": "Encounter",
                "id": eid,
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
                "subject": {"reference": f"Patient/{pid}"},
            }
            await client.put(f"/fhir/Encounter/{eid}", json=body, headers=JSON)
            ids.append(eid)
        await reads_per_second(client, ids, 1, concurrency)  # warm up (trail off)
        off = await reads_per_second(client, ids, seconds, concurrency)
        await app.state.audit.start()
        on = await reads_per_second(client, ids, seconds, concurrency)
        await app.state.audit.stop()
        written, chained = app.state.audit.written, app.state.audit.chain is not None
    await app.state.engine.dispose()
    return on, off, written, chained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kwg-bench-audit-") as home:
        if args.db == "sqlite":
            url = f"sqlite+aiosqlite:///{Path(home) / 'a.db'}"
            on, off, written, chained = asyncio.run(run(url, home, args.seconds, args.concurrency))
        else:
            name = f"kwg_bench_{uuid.uuid4().hex[:10]}"
            asyncio.run(_admin(args.postgres, f'CREATE DATABASE "{name}"'))
            try:
                url = args.postgres.rsplit("/", 1)[0] + f"/{name}"
                on, off, written, chained = asyncio.run(run(url, home, args.seconds, args.concurrency))
            finally:
                asyncio.run(_admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(
        f"{args.db}: reads/s with audit {on:,.0f}, without (baseline) {off:,.0f}: ratio {on / off:.2f} (target >= 0.5)"
    )
    print(f"{written:,} AuditEvents written during the audited run (hash chain: {chained})")


if __name__ == "__main__":
    main()
