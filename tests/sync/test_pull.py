"""Pulling changes from another FHIR server (here another gateway, over HTTP in-process) by ``_lastUpdated``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.fhir.config import FhirConfig
from connectors.fhir.connector import FhirConnector
from gateway.app import create_app
from gateway.origins import connector_origin
from gateway.settings import Settings
from gateway.store.migrate import upgrade
from gateway.store.repository import SqlFhirRepository
from gateway.sync.pull import pull, read_cursor

JSON = {"Content-Type": "application/fhir+json"}
ORIGIN = connector_origin("ehr", "fhir", "http://ehr.test/fhir", organisation="RX4")


async def provenances(store: SqlFhirRepository, target: str) -> list[dict[str, Any]]:
    found = await store.search("Provenance", [("target", target), ("_sort", "_lastUpdated")])
    return [orjson.loads(r.content or b"{}") for r in found.matches]


async def test_changes_are_pulled_once_and_the_cursor_moves_on(
    sync_engine: AsyncEngine, store: SqlFhirRepository, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/source.db"
    settings = Settings(home=tmp_path, database_url=url)  # type: ignore[arg-type]
    upgrade(settings, url=url)
    source_app = create_app(settings)
    transport = httpx.ASGITransport(app=source_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ehr.test") as ehr:
        for n in range(130):  # more than a page
            body = {"resourceType": "Encounter", "id": f"adm-{n}", "status": "in-progress", "class": {"code": "IMP"}}
            assert (await ehr.put(f"/fhir/Encounter/adm-{n}", json=body, headers=JSON)).status_code == 201
        connector = FhirConnector(FhirConfig(endpoint="http://ehr.test/fhir"), transport=transport)  # type: ignore[arg-type]
        first = await pull(sync_engine, store, "ehr", connector, ["Encounter"], origin=ORIGIN)
        assert first.resources == 130
        assert (await store.read("Encounter", "adm-129")).version_id == 1
        cursor = await read_cursor(sync_engine, "pull:ehr:Encounter")
        assert cursor is not None
        again = await pull(sync_engine, store, "ehr", connector, ["Encounter"], origin=ORIGIN)
        assert again.resources == 0  # nothing changed since the cursor
        body = {"resourceType": "Encounter", "id": "adm-7", "status": "finished", "class": {"code": "IMP"}}
        await ehr.put("/fhir/Encounter/adm-7", json=body, headers=JSON)
        third = await pull(sync_engine, store, "ehr", connector, ["Encounter"], origin=ORIGIN)
        assert third.resources == 1
        stored = await store.read("Encounter", "adm-7")
        assert stored.version_id == 2 and b'"finished"' in (stored.content or b"")
        assert (await read_cursor(sync_engine, "pull:ehr:Encounter") or "") > cursor
        # Each stored page has one Provenance: the connector, for its organisation, from the source system.
        pages = await provenances(store, "Encounter/adm-7")
        assert [sorted(t["reference"] for t in p["target"] if "adm-7/" in t["reference"]) for p in pages] == [
            ["Encounter/adm-7/_history/1"],
            ["Encounter/adm-7/_history/2"],
        ]
        first_page = await provenances(store, "Encounter/adm-0")
        assert len(first_page[0]["target"]) == 100 and first_page[0]["activity"]["coding"][0]["code"] == "CREATE"
        assert pages[1]["target"] == [{"reference": "Encounter/adm-7/_history/2"}]
        assert pages[1]["activity"]["coding"][0]["code"] == "UPDATE"
        [agent] = pages[1]["agent"]
        assert agent["who"]["identifier"]["value"] == "ehr" and agent["onBehalfOf"]["identifier"]["value"] == "RX4"
        assert pages[1]["entity"][0]["what"]["identifier"]["value"] == "http://ehr.test/fhir"
        await connector.aclose()
    await source_app.state.engine.dispose()
