"""Pulling changes from another FHIR server (here another gateway, over HTTP in-process) by ``_lastUpdated``."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.fhir.config import FhirConfig
from connectors.fhir.connector import FhirConnector
from gateway.app import create_app
from gateway.settings import Settings
from gateway.store.migrate import upgrade
from gateway.store.repository import SqlFhirRepository
from gateway.sync.pull import pull, read_cursor

JSON = {"Content-Type": "application/fhir+json"}


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
        first = await pull(sync_engine, store, "ehr", connector, ["Encounter"])
        assert first.resources == 130
        assert (await store.read("Encounter", "adm-129")).version_id == 1
        cursor = await read_cursor(sync_engine, "pull:ehr:Encounter")
        assert cursor is not None
        again = await pull(sync_engine, store, "ehr", connector, ["Encounter"])
        assert again.resources == 0  # nothing changed since the cursor
        body = {"resourceType": "Encounter", "id": "adm-7", "status": "finished", "class": {"code": "IMP"}}
        await ehr.put("/fhir/Encounter/adm-7", json=body, headers=JSON)
        third = await pull(sync_engine, store, "ehr", connector, ["Encounter"])
        assert third.resources == 1
        stored = await store.read("Encounter", "adm-7")
        assert stored.version_id == 2 and b'"finished"' in (stored.content or b"")
        assert (await read_cursor(sync_engine, "pull:ehr:Encounter") or "") > cursor
        await connector.aclose()
    await source_app.state.engine.dispose()
