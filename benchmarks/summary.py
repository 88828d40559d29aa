"""What the cross-agency summary costs: p50/p99 of ``Patient/{id}/$summary`` as a FHIR document and as HTML for a
person with 200 contacts, a care team across agencies, register ratings, a keyworking case and a C(E)TR with
recommendations; the PDF separately; the baseline is ``$everything`` for the same person, same run.

    .venv/bin/python -m benchmarks.summary                    # SQLite, in-process over ASGI
    .venv/bin/python -m benchmarks.summary --db postgresql

Goal (docs/summary.md): p99 <= 200 ms for the JSON document and the HTML page. Requests run one at a time
through the ASGI app with the audit trail on, as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import httpx

from benchmarks.transaction_ingest import DEFAULT_POSTGRES, _admin
from gateway.app import create_app
from gateway.demo.loader import put_record, records_of
from gateway.demo.population import YoungPersonRecords, population
from gateway.settings import Settings
from gateway.store.migrate import upgrade

CONTACTS = 200
GOAL_MS = 200.0


def busy_person() -> YoungPersonRecords:
    """A demo young person with every kind of record, given 200 contacts."""
    for young_person in population(people=200, today=date(2026, 11, 2)):
        if young_person.reviews and young_person.case and young_person.care_team and young_person.contacts:
            template = young_person.contacts[0]
            young_person.contacts = [
                template.model_copy(
                    update={
                        "id": f"{young_person.person.id}-bench-{n}",
                        "start": template.start - timedelta(days=3 * n),
                        "end": (template.end or template.start) - timedelta(days=3 * n),
                    }
                )
                for n in range(CONTACTS)
            ]
            return young_person
    raise SystemExit("no demo person with every kind of record")


async def timings(client: httpx.AsyncClient, path: str, requests: int, **params: str) -> list[float]:
    out = []
    for _ in range(requests):
        started = time.perf_counter()
        response = await client.get(path, params=params)
        out.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:300]
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run(url: str, home: str, requests: int, pdfs: int) -> dict[str, list[float]]:
    settings = Settings(home=home, database_url=url, log_level="WARNING", auth="off")  # type: ignore[arg-type]
    upgrade(settings, url=url)
    app = create_app(settings)
    person = busy_person()
    pid = person.person.id
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),  # as served: audit trail on, memory settled after start-up
        httpx.AsyncClient(transport=transport, base_url="http://bench.test") as client,
    ):
        for record in records_of(person):
            await put_record(client, record)
        everything, summary = f"/fhir/Patient/{pid}/$everything", f"/fhir/Patient/{pid}/$summary"
        await timings(client, everything, 10, _count="1000")  # warm up
        await timings(client, summary, 10)
        document = (await client.get(summary)).text
        assert f"of {CONTACTS} contacts" in document, "the person does not have the contacts the benchmark needs"
        await timings(client, summary, 2, _format="pdf")
        results = {
            "$everything (baseline)": await timings(client, everything, requests, _count="1000"),
            "$summary JSON document": await timings(client, summary, requests),
            "$summary HTML page": await timings(client, summary, requests, _format="html"),
            "$summary PDF": await timings(client, summary, pdfs, _format="pdf"),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--pdfs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kwg-bench-summary-") as home:
        if args.db == "sqlite":
            url = f"sqlite+aiosqlite:///{Path(home) / 's.db'}"
            results = asyncio.run(run(url, home, args.requests, args.pdfs))
        else:
            name = f"kwg_bench_{uuid.uuid4().hex[:10]}"
            asyncio.run(_admin(args.postgres, f'CREATE DATABASE "{name}"'))
            try:
                url = args.postgres.rsplit("/", 1)[0] + f"/{name}"
                results = asyncio.run(run(url, home, args.requests, args.pdfs))
            finally:
                asyncio.run(_admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    base = percentile(results["$everything (baseline)"], 50)
    print(f"{args.db}: one person with {CONTACTS} contacts; {args.requests} requests each ({args.pdfs} for the PDF)")
    for name, values in results.items():
        p50, p99 = percentile(values, 50), percentile(values, 99)
        goal = "" if "PDF" in name or "baseline" in name else f"  goal p99 <= {GOAL_MS:.0f} ms: "
        goal += ("met" if p99 <= GOAL_MS else "MISSED") if goal else ""
        print(f"  {name:<24} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  p50/baseline {p50 / base:5.2f}{goal}")


if __name__ == "__main__":
    main()
