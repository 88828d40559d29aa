"""A record written through the FHIR API as the mappings' transaction Bundle reads back as the same record.

The FHIR is the only copy, so this is the domain API's promise end to end: map, validate on write (the store's
profile checks), store, read by id, map back. Writing the same record twice leaves one resource per id. Runs on
SQLite and PostgreSQL (the ``client`` fixture).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from mappings.keyworking.elements import transaction
from mappings.keyworking.mapping import from_fhir, to_fhir
from mappings.keyworking.records import ReviewMeeting
from tests.mappings.test_golden import KINDS

JSON = {"Content-Type": "application/fhir+json"}
RECORDS = Path(__file__).parent / "records"


@pytest.mark.parametrize("kind", KINDS)
async def test_written_record_reads_back(client: httpx.AsyncClient, kind: str) -> None:
    record = KINDS[kind].model_validate_json((RECORDS / f"{kind}.json").read_text())
    resources = to_fhir(record)
    for _ in range(2):
        response = await client.post("/fhir", json=transaction(resources), headers=JSON)
        assert response.status_code == 200, response.text
        assert all(e["response"]["status"][:3] in ("200", "201") for e in response.json()["entry"])
    stored: list[dict[str, Any]] = []
    for resource in resources:
        path = f"/fhir/{resource['resourceType']}"
        found = (await client.get(path, params={"_id": resource["id"]})).json()
        assert [e["resource"]["id"] for e in found.get("entry", [])] == [resource["id"]]
        stored.append((await client.get(f"{path}/{resource['id']}")).json())
    back = from_fhir(type(record), stored)
    if isinstance(record, ReviewMeeting):  # recommendations without an id read back with their derived Task id
        assert isinstance(back, ReviewMeeting)
        assert [r.id for r in back.recommendations] == [r["id"] for r in resources if r["resourceType"] == "Task"]
        back = back.model_copy(
            update={
                "recommendations": tuple(
                    b.model_copy(update={"id": r.id})
                    for b, r in zip(back.recommendations, record.recommendations, strict=True)
                )
            }
        )
    assert back == record
