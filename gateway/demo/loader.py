"""Load the synthetic ICS into a running gateway through its public domain API (``PUT /api/v1/...``), over HTTP.

Records are PUT under their deterministic ids, so loading again updates instead of duplicating. The agencies go
first, as FHIR Organizations (``PUT /fhir/Organization/{id}``: the domain API has no organisations), then the young
people, concurrently (a few at a time); each one's records go in order (person, register entry, care team, case,
contacts, meetings), because each names the ones before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from gateway.demo.population import YoungPersonRecords, organisations
from mappings.keyworking.records import Record

COLLECTIONS = {
    "Person": "people",
    "RegisterEntry": "register-entries",
    "CareTeam": "care-teams",
    "KeyworkingCase": "cases",
    "Contact": "contacts",
    "ReviewMeeting": "reviews",
}


@dataclass(slots=True)
class LoadReport:
    people: int = 0
    records: int = 0
    failures: int = 0
    organisations: int = 0


class DemoLoadError(Exception):
    """The gateway refused a demo record (the message holds its OperationOutcome)."""


def records_of(young_person: YoungPersonRecords) -> list[Record]:
    out: list[Record] = [young_person.person, young_person.register_entry]
    if young_person.care_team is not None:
        out.append(young_person.care_team)
    if young_person.case is not None:
        out.append(young_person.case)
    out += young_person.contacts
    out += young_person.reviews
    return out


async def put_record(client: httpx.AsyncClient, record: Record) -> None:
    collection = COLLECTIONS[type(record).__name__]
    rid = getattr(record, "id", None)
    response = await client.put(
        f"/api/v1/{collection}/{rid}",
        content=record.model_dump_json(exclude_none=True),
        headers={"Content-Type": "application/json"},
    )
    if response.status_code not in (200, 201):
        raise DemoLoadError(f"PUT /api/v1/{collection}/{rid}: {response.status_code} {response.text[:500]}")


async def put_organisation(client: httpx.AsyncClient, organisation: dict[str, Any]) -> None:
    path = f"/fhir/Organization/{organisation['id']}"
    response = await client.put(path, json=organisation, headers={"Content-Type": "application/fhir+json"})
    if response.status_code not in (200, 201):
        raise DemoLoadError(f"PUT {path}: {response.status_code} {response.text[:500]}")


async def load(
    client: httpx.AsyncClient,
    population: Iterable[YoungPersonRecords],
    *,
    concurrency: int = 4,
    progress: Callable[[LoadReport], None] | None = None,
) -> LoadReport:
    """PUT every record; stop at the first refusal (a demo record the gateway refuses is a bug worth seeing)."""
    report = LoadReport()
    for organisation in organisations():
        await put_organisation(client, organisation)
        report.organisations += 1
    gate = asyncio.Semaphore(concurrency)

    async def one(young_person: YoungPersonRecords) -> None:
        async with gate:
            for record in records_of(young_person):
                await put_record(client, record)
                report.records += 1
            report.people += 1
            if progress is not None:
                progress(report)

    tasks = [asyncio.create_task(one(young_person)) for young_person in population]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    return report
