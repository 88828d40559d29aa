"""The operators' view over HTTP: destinations (queue depth, error rate), the delivery log, dead letters, replay."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.fhir.connector import FhirConnector
from gateway.app import create_app
from gateway.settings import Settings
from gateway.store.repository import SqlFhirRepository
from tests.sync.conftest import destination
from tests.sync.test_engine import drain_all, faults, patient

DESTINATIONS = """
[[destination]]
name = "shared-record"
connector = "fhir"
endpoint = "http://destination.test/fhir"
recipient = "nhs-provider"
lanes = 4
"""


async def test_operators_list_inspect_and_replay_dead_letters(
    sync_engine: AsyncEngine,
    sync_db_url: str,
    store: SqlFhirRepository,
    connector: FhirConnector,
    destination_client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    dest = destination(max_attempts=1)
    await faults(destination_client, reject_ids=["Patient/poison"])
    for pid in ("p1", "poison"):
        await patient(store, pid, pid)
    await drain_all(sync_engine, store, dest, connector)
    (tmp_path / "destinations.toml").write_text(DESTINATIONS)
    file = tmp_path / "destinations.toml"
    settings = Settings(home=tmp_path, database_url=sync_db_url, destinations_file=file)  # type: ignore[arg-type]
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as client:
        [summary] = (await client.get("/admin/destinations")).json()["items"]
        assert (summary["name"], summary["queue_depth"], summary["delivered"], summary["dead_letters"]) == (
            "shared-record",
            0,
            1,
            1,
        )
        assert summary["last_success"] is not None and summary["error_rate_last_hour"] == 0.5
        dead = (await client.get("/admin/deliveries", params={"status": "dead"})).json()["items"]
        assert [d["resource"] for d in dead] == ["Patient/poison"]
        detail = (await client.get(f"/admin/deliveries/{dead[0]['id']}")).json()
        assert [a["outcome"] for a in detail["attempts"]] == ["refused"]
        assert detail["attempts"][0]["status"] == 422
        assert (await client.get("/admin/deliveries/999999")).status_code == 404
        replayed = await client.post(f"/admin/deliveries/{dead[0]['id']}/replay")
        assert replayed.status_code == 202 and replayed.json()["replayed"] is True
        assert (await client.get("/admin/deliveries", params={"status": "dead"})).json()["items"] == []
        assert (await client.get("/admin/deliveries", params={"status": "bogus"})).status_code == 422
    await app.state.engine.dispose()
