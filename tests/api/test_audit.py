"""Every access to a person's data leaves an AuditEvent, searchable through FHIR by patient, agent and date."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx

from gateway.app import create_app
from gateway.audit.events import CLIENT_SYSTEM
from gateway.settings import Settings
from gateway.store.migrate import upgrade
from tests.api.test_domain_api import API, record

JSON = {"Content-Type": "application/fhir+json"}


async def test_reads_searches_and_writes_are_audited(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/audit.db"
    settings = Settings(home=tmp_path, database_url=url)  # type: ignore[arg-type]
    upgrade(settings, url=url)
    app = create_app(settings)
    await app.state.audit.start()  # what the lifespan does under uvicorn
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as client:
        assert (await client.put(f"{API}/people/yp-amira-khan", json=record("person"))).status_code == 201
        await client.get(f"{API}/people/yp-amira-khan")
        encounter = {
            "resourceType": "Encounter",
            "id": "visit-1",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
            "subject": {"reference": "Patient/yp-amira-khan"},
        }
        await client.put("/fhir/Encounter/visit-1", json=encounter, headers=JSON)
        await client.get("/fhir/Encounter/visit-1")
        await client.get("/fhir/Encounter", params={"subject": "Patient/yp-amira-khan"})
        await client.put(
            "/fhir/Patient/someone-else", json={"resourceType": "Patient", "id": "someone-else"}, headers=JSON
        )
        await app.state.audit.flush()
        found = (
            await client.get(
                "/fhir/AuditEvent", params={"patient": "Patient/yp-amira-khan", "_sort": "date", "_count": "50"}
            )
        ).json()
        events = [e["resource"] for e in found["entry"]]
        assert [e["subtype"][0]["code"] for e in events] == ["create", "read", "create", "read", "search-type"]
        assert [e["action"] for e in events] == ["C", "R", "C", "R", "E"]
        read = events[3]
        assert {x["what"]["reference"] for x in read["entity"] if "what" in x} == {
            "Patient/yp-amira-khan",
            "Encounter/visit-1",
        }
        assert read["agent"][0]["who"]["identifier"] == {"system": CLIENT_SYSTEM, "value": "development"}
        query = next(x for x in events[4]["entity"] if "query" in x)["query"]
        assert base64.b64decode(query).decode().startswith("Encounter?subject=Patient")
        # By agent and by date too; the other person's write is not in this person's trail.
        by_agent = await client.get(
            "/fhir/AuditEvent", params={"agent:identifier": f"{CLIENT_SYSTEM}|development", "_summary": "count"}
        )
        assert by_agent.json()["total"] == 6
        today = events[0]["recorded"][:10]
        assert (await client.get("/fhir/AuditEvent", params={"date": today, "_summary": "count"})).json()["total"] >= 6
    await app.state.audit.stop()
    await app.state.engine.dispose()
    assert app.state.audit.dropped == 0
