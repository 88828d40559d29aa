"""What FHIR Subscriptions cost the relay: outbox events relayed per second to one destination (the baseline), and
to the same destination plus N live Subscriptions whose criteria are matched at relay time, in the same run.

    .venv/bin/python -m benchmarks.subscriptions                       # SQLite, 2,000 Flag changes, 10 subscriptions
    .venv/bin/python -m benchmarks.subscriptions --db postgresql --subscriptions 50

Matching runs one criteria search per Subscription per relay batch (500 events), restricted to the batch's ids.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid

from sqlalchemy import delete, update

from benchmarks.transaction_ingest import DEFAULT_POSTGRES, _admin
from gateway.auth import DEVELOPMENT_CALLER
from gateway.settings import Settings
from gateway.store.db import create_engine
from gateway.store.migrate import upgrade
from gateway.store.models import outbox
from gateway.store.repository import SqlFhirRepository
from gateway.sync.destinations import Destination
from gateway.sync.directory import Directory
from gateway.sync.relay import relay_once
from gateway.sync.subscriptions import record_owner
from gateway.sync.tables import delivery

NHS = "https://fhir.nhs.uk/Id/nhs-number"


async def run(url: str, home: str, changes: int, subscriptions: int) -> tuple[float, float, int]:
    settings = Settings(home=home, database_url=url, log_level="WARNING")  # type: ignore[arg-type]
    upgrade(settings, url=url)
    engine = create_engine(settings)
    repo = SqlFhirRepository(engine)
    people = 200
    for n in range(people):
        body = {"resourceType": "Patient", "id": f"p{n}", "identifier": [{"system": NHS, "value": f"90000{n:05d}"}]}
        await repo.update("Patient", f"p{n}", body)
    for n in range(subscriptions):
        sid = f"bench-{n}"
        criteria = f"Flag?patient.identifier={NHS}|90000{n * 7 % people:05d}"
        body = {
            "resourceType": "Subscription",
            "id": sid,
            "status": "active",
            "reason": "benchmark",
            "criteria": criteria,
            "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook"},
        }
        await repo.update("Subscription", sid, body)
        await record_owner(engine, sid, DEVELOPMENT_CALLER)
    for n in range(changes):
        pid = f"p{n % people}"
        body = {
            "resourceType": "Flag",
            "id": f"f{n}",
            "status": "active",
            "code": {"text": "Keyworker allocated"},
            "subject": {"reference": f"Patient/{pid}"},
        }
        await repo.update("Flag", f"f{n}", body)
    file_destination = Destination.model_validate(
        {"name": "record", "connector": "fhir", "endpoint": "http://127.0.0.1:9/fhir", "recipient": "nhs-provider"}
    )
    source = Directory(engine, settings, (file_destination,)).relay_source()

    async def relay_all(with_subscriptions: bool) -> tuple[float, int]:
        async with engine.begin() as conn:
            await conn.execute(delete(delivery))
            await conn.execute(update(outbox).values(relayed_at=None))
        made = 0
        started = time.perf_counter()
        while True:
            destinations, matcher = await source()
            if not with_subscriptions:
                destinations, matcher = (file_destination,), None
            report = await relay_once(engine, destinations, matcher=matcher)
            made += report.deliveries
            if report.events == 0:
                return time.perf_counter() - started, made

    base_seconds, _ = await relay_all(False)
    subs_seconds, made = await relay_all(True)
    await engine.dispose()
    return base_seconds, subs_seconds, made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--changes", type=int, default=2000)
    parser.add_argument("--subscriptions", type=int, default=10)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="kwg-bench-subs-")
    if args.db == "sqlite":
        url = f"sqlite+aiosqlite:///{home}/bench.db"
        base, subs, made = asyncio.run(run(url, home, args.changes, args.subscriptions))
    else:
        name = f"kwg_bench_{uuid.uuid4().hex[:8]}"
        asyncio.run(_admin(DEFAULT_POSTGRES, f'CREATE DATABASE "{name}"'))
        try:
            url = DEFAULT_POSTGRES.rsplit("/", 1)[0] + f"/{name}"
            base, subs, made = asyncio.run(run(url, home, args.changes, args.subscriptions))
        finally:
            asyncio.run(_admin(DEFAULT_POSTGRES, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    events = args.changes + 200 + args.subscriptions  # the Flags, the Patients, the Subscriptions
    print(f"database: {args.db}; outbox events: {events}; live subscriptions: {args.subscriptions}")
    print(f"baseline (one destination):          {events / base:10.0f} events/s ({base:.2f} s)")
    print(f"with the subscriptions matched:      {events / subs:10.0f} events/s ({subs:.2f} s); {made} deliveries")
    print(f"ratio (with / baseline throughput):  {base / subs:10.2f}")


if __name__ == "__main__":
    main()
