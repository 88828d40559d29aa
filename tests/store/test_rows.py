"""The pure row builder (used by the benchmark's bulk loader) builds exactly the rows the repository writes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store import rows
from gateway.store.models import INDEX_TABLES, outbox, resource, resource_version
from gateway.store.repository import SqlFhirRepository

NHS = "https://fhir.nhs.uk/Id/nhs-number"


def _patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "meta": {"tag": [{"system": "https://example.org/tags", "code": "bench"}]},
        "identifier": [{"system": NHS, "value": "9990000018"}],
        "name": [{"family": "Ölander", "given": ["Alex", "Sam"]}],
        "gender": "female",
        "birthDate": "2012-04-01",
        "address": [{"line": ["1 High Street"], "city": "Leeds", "postalCode": "LS1 4AP"}],
    }


def _episode() -> dict[str, Any]:
    return {
        "resourceType": "EpisodeOfCare",
        "status": "active",
        "type": [
            {"coding": [{"system": "https://keyworking-gateway.org/fhir/CodeSystem/episode-type", "code": "dsr"}]}
        ],
        "patient": {"reference": "Patient/p-1"},
        "managingOrganization": {"reference": "Organization/o-1"},
        "careManager": {"reference": "Practitioner/kw-1"},
        "period": {"start": "2026-01-05"},
    }


def _encounter() -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
        "subject": {"reference": "Patient/p-1"},
        "participant": [{"individual": {"reference": "https://other.example/fhir/Practitioner/kw-9"}}],
        "period": {"start": "2026-02-01T10:00:00Z", "end": "2026-02-01T11:00:00Z"},
    }


async def _stored(conn: AsyncConnection, res_type: str, res_id: str) -> tuple[int, dict[str, Any]]:
    row = (
        await conn.execute(select(resource).where(resource.c.res_type == res_type, resource.c.res_id == res_id))
    ).one()
    version = (
        await conn.execute(
            select(resource_version).where(resource_version.c.res_type == res_type, resource_version.c.res_id == res_id)
        )
    ).one()
    index: dict[str, list[dict[str, Any]]] = {}
    for table in INDEX_TABLES:
        found = [dict(r._mapping) for r in (await conn.execute(select(table).where(table.c.res_pk == row.pk))).all()]
        if found:
            index[table.name] = found
    event = (await conn.execute(select(outbox).where(outbox.c.res_type == res_type, outbox.c.res_id == res_id))).one()
    resource_row = {k: v for k, v in row._mapping.items() if k != "pk"}
    event_row = {k: v for k, v in event._mapping.items() if k not in ("id", "relayed_at")}
    return row.pk, {"resource": resource_row, "version": dict(version._mapping), "index": index, "outbox": event_row}


def _sorted(index: dict[str, list[dict[str, Any]]]) -> dict[str, list[tuple[tuple[str, Any], ...]]]:
    return {
        name: sorted(tuple(sorted(r.items(), key=lambda kv: kv[0])) for r in found) for name, found in index.items()
    }


@pytest.mark.parametrize("body", [_patient(), _episode(), _encounter()], ids=lambda b: b["resourceType"])
async def test_rows_equal_what_the_repository_writes(repo: SqlFhirRepository, body: dict[str, Any]) -> None:
    created = await repo.create(body)
    stored = created.resource
    assert stored is not None
    assert repo._conn is not None
    pk, written = await _stored(repo._conn, stored.res_type, stored.res_id)
    built = rows.version_rows(body, stored.res_id, pk=pk, ts=stored.last_updated)
    assert built.content == stored.content
    assert built.resource == written["resource"]
    assert built.version == written["version"]
    assert built.outbox == written["outbox"]
    assert _sorted(built.index) == _sorted(written["index"])
    assert built.index  # every one of these bodies has search values


def test_rows_of_a_later_version_are_an_update() -> None:
    built = rows.version_rows(_patient(), "p-1", pk=7, ts=1_700_000_000_000_000, version=3)
    assert built.version["method"] == "update" and built.outbox["method"] == "update"
    assert b'"versionId":"3"' in built.content
    assert all(r["res_pk"] == 7 for found in built.index.values() for r in found)
