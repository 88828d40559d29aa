"""Domain writes per second: keyworking records through ``PUT /api/v1/...`` (map + validate + store), both databases.

    .venv/bin/python -m benchmarks.domain_writes                      # SQLite and PostgreSQL, ~1 minute
    .venv/bin/python -m benchmarks.domain_writes --db sqlite --people 200
    .venv/bin/python -m benchmarks.domain_writes --no-rules           # without the register rules (store alone)
    .venv/bin/python -m benchmarks.domain_writes --url http://127.0.0.1:8080   # a running gateway, real HTTP

The records are the demo population's (``gateway.demo.population``): people, register entries with rating
histories, care teams, cases, contacts and C(E)TR meetings, in the proportions ``kwg demo`` loads. Each young
person's records go in order, several young people at once (``--concurrency``). Every write maps the record,
validates each resource (structure and our profiles), stores it with its history, index rows and outbox event, and
deletes what an earlier version had and this one has not, in one transaction.

Baseline, measured in the same run on the same database: the same resources as the mapping produces, written as
one FHIR transaction Bundle per record through ``POST /fhir`` (what a client that speaks FHIR itself would send),
so the ratio is the cost of the domain layer (reading the stored version, mapping, and the rules).

The app runs in this process over ASGI (no sockets) unless ``--url`` is given. Target (issue 3): ≥ 300 records/s.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import httpx
import orjson

from benchmarks.transaction_ingest import DEFAULT_POSTGRES, _admin
from gateway.app import create_app
from gateway.demo.loader import COLLECTIONS, records_of
from gateway.demo.population import YoungPersonRecords, population
from gateway.settings import Settings
from gateway.store.migrate import upgrade
from mappings.keyworking.elements import transaction
from mappings.keyworking.mapping import to_fhir
from mappings.keyworking.records import Record

TARGET = 300


class Answer(Protocol):
    @property
    def status_code(self) -> int: ...
    @property
    def text(self) -> str: ...


class WriteClient(Protocol):
    """What the drivers need of an HTTP client: httpx's ASGI client in-process, aiohttp's session over sockets."""

    async def put(self, url: str, *, content: bytes | str, headers: dict[str, str]) -> Answer: ...
    async def post(self, url: str, *, content: bytes | str, headers: dict[str, str]) -> Answer: ...


@dataclass(frozen=True, slots=True)
class _Answered:
    status_code: int
    text: str


class LeanClient:
    """aiohttp over real sockets: on a two-core machine the load generator shares the CPU with the gateway, and an
    aiohttp request costs about a third of an httpx one, so less of the machine goes to the client."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64), timeout=aiohttp.ClientTimeout(total=600)
        )

    async def _send(self, method: str, url: str, content: bytes | str, headers: dict[str, str]) -> Answer:
        async with self.session.request(method, self.base_url + url, data=content, headers=headers) as response:
            return _Answered(response.status, await response.text())

    async def put(self, url: str, *, content: bytes | str, headers: dict[str, str]) -> Answer:
        return await self._send("PUT", url, content, headers)

    async def post(self, url: str, *, content: bytes | str, headers: dict[str, str]) -> Answer:
        return await self._send("POST", url, content, headers)


async def _domain_write(client: WriteClient, record: Record) -> None:
    rid = getattr(record, "id", None)
    response = await client.put(
        f"/api/v1/{COLLECTIONS[type(record).__name__]}/{rid}",
        content=record.model_dump_json(exclude_none=True),
        headers={"Content-Type": "application/json"},
    )
    if response.status_code not in (200, 201):
        raise RuntimeError(f"{response.status_code}: {response.text[:400]}")


async def _fhir_write(client: WriteClient, record: Record) -> None:
    body = orjson.dumps(transaction(to_fhir(record)))
    response = await client.post("/fhir", content=body, headers={"Content-Type": "application/fhir+json"})
    if response.status_code != 200:
        raise RuntimeError(f"{response.status_code}: {response.text[:400]}")


async def _drive(
    client: WriteClient,
    people: Sequence[YoungPersonRecords],
    write: Callable[[WriteClient, Record], Awaitable[None]],
    concurrency: int,
) -> tuple[int, float, float]:
    """Write every record (each person's in order, ``concurrency`` people at once): records, seconds taken and the
    CPU seconds this process spent meanwhile (in-process: client and gateway, SQLite's driver threads included)."""
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(young_person: YoungPersonRecords) -> None:
        nonlocal done
        async with gate:
            for record in records_of(young_person):
                await write(client, record)
                done += 1

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(p) for p in people))
    return done, time.perf_counter() - started, time.process_time() - cpu


async def measure(client: WriteClient, people_count: int, concurrency: int) -> dict[str, float]:
    seeds = int(time.time()) % 10_000
    warm = list(population(seed=seeds, people=10))
    await _drive(client, warm, _domain_write, concurrency)
    domain_people = list(population(seed=seeds + 1, people=people_count))
    baseline_people = list(population(seed=seeds + 2, people=people_count))
    records, seconds, cpu = await _drive(client, domain_people, _domain_write, concurrency)
    base_records, base_seconds, _ = await _drive(client, baseline_people, _fhir_write, concurrency)
    resources = sum(len(to_fhir(r)) for p in domain_people for r in records_of(p))
    return {
        "records": records,
        "resources_per_record": resources / records,
        "domain_records_per_s": records / seconds,
        "domain_cpu_ms_per_record": cpu * 1000 / records,
        "baseline_records_per_s": base_records / base_seconds,
    }


async def in_process(url: str, home: str, people: int, concurrency: int, rules: bool = True) -> dict[str, float]:
    settings = Settings(home=home, database_url=url, log_level="WARNING", auth="off")  # type: ignore[arg-type]
    upgrade(settings, url=url)
    app = create_app(settings)
    if not rules:
        app.state.register_rules = None  # the store alone: map + validate + store
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.test", timeout=600) as client:
            return await measure(client, people, concurrency)
    finally:
        await app.state.engine.dispose()


async def remote(url: str, people: int, concurrency: int) -> dict[str, float]:
    client = LeanClient(url)
    try:
        return await measure(client, people, concurrency)
    finally:
        await client.session.close()


def run_on(db: str, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="kwg-bench-") as home:
        if db == "sqlite":
            sqlite = f"sqlite+aiosqlite:///{home}/bench.db"
            return asyncio.run(in_process(sqlite, home, args.people, args.concurrency, args.rules))
        name = f"kwg_bench_{uuid.uuid4().hex[:10]}"
        asyncio.run(_admin(args.postgres, f'CREATE DATABASE "{name}"'))
        try:
            url = args.postgres.rsplit("/", 1)[0] + f"/{name}"
            return asyncio.run(in_process(url, home, args.people, args.concurrency, args.rules))
        finally:
            asyncio.run(_admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin URL of the PostgreSQL server")
    parser.add_argument("--people", type=int, default=150, help="young people per measurement (about 6 records each)")
    parser.add_argument("--concurrency", type=int, default=8, help="young people written at once")
    parser.add_argument("--url", help="drive a running gateway over HTTP instead of in-process")
    parser.add_argument(
        "--no-rules",
        dest="rules",
        action="store_false",
        help="in-process only: leave the register rules out (map + validate + store alone)",
    )
    args = parser.parse_args()
    targets = [args.url] if args.url else (["sqlite", "postgresql"] if args.db == "both" else [args.db])
    header = (
        f"{'database':12} {'records':>7} {'res/rec':>7} {'domain rec/s':>13} {'FHIR txn rec/s':>15} "
        f"{'ratio':>6} {'vs target':>9} {'CPU ms/rec':>10}"
    )
    print(header)
    print("-" * len(header))
    for target in targets:
        figures = asyncio.run(remote(target, args.people, args.concurrency)) if args.url else run_on(target, args)
        domain, base = figures["domain_records_per_s"], figures["baseline_records_per_s"]
        print(
            f"{target[:12]:12} {figures['records']:7,.0f} {figures['resources_per_record']:7.1f} {domain:13,.0f} "
            f"{base:15,.0f} {domain / base:5.2f}× {domain / TARGET:8.1f}× {figures['domain_cpu_ms_per_record']:10.2f}"
        )
    print(
        f"\nrecords/s through the domain API (map + validate + store{' + rules' if args.rules else ''}), "
        "in-process over ASGI unless --url; baseline: the same "
        "records' resources as FHIR transaction Bundles through POST /fhir, in the same run. CPU ms/rec: this "
        "process's CPU time per domain write (in-process: client and gateway; with --url: the client only)."
    )


if __name__ == "__main__":
    main()
