"""Who sees which AuditEvents, signed in with real tokens: a client sees the events its own organisation took part
in; an ICB (a data sharing agreement) with AuditEvent access sees them all, by patient, agent and date; the same
rule for a read as for a search."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.audit.events import CLIENT_SYSTEM
from gateway.security.assertion import client_assertion, jwk_of, new_private_key
from gateway.security.clients import ApiClient, add_client
from gateway.store.migrate import upgrade
from tests.security.conftest import BASE, TOKEN_URL, Secured, secured_settings

KEY = new_private_key()
CLIENTS = {  # client id → organisation, type, scopes
    "trust-ehr": ("RX4", "nhs-provider", "system/Patient.rs system/AuditEvent.rs"),
    "school-mis": ("100001", "school", "system/Patient.rs system/AuditEvent.rs"),
    "icb-register": ("QX9", "icb", "system/AuditEvent.rs"),
}


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[Secured]:
    """A gateway with authentication on, three clients, Amira on the trust's care team, the audit trail running."""
    settings = secured_settings(tmp_path)
    upgrade(settings, url=settings.resolved_database_url)
    app = create_app(settings)
    for client_id, (org, kind, scopes) in CLIENTS.items():
        keys = {"keys": [jwk_of(KEY.public_key(), f"{client_id}-1")]}
        await add_client(app.state.engine, ApiClient(client_id, client_id, org, kind, scopes, keys, False))
    repo = app.state.repository
    await repo.update("Patient", "amira", {"resourceType": "Patient", "id": "amira", "birthDate": "2011-05-04"})
    team = {
        "resourceType": "CareTeam",
        "id": "team-amira",
        "subject": {"reference": "Patient/amira"},
        "participant": [
            {"onBehalfOf": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RX4"}}}
        ],
    }
    await repo.update("CareTeam", "team-amira", team)
    await app.state.audit.start()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield Secured(app, http)
    await app.state.audit.stop()
    await app.state.engine.dispose()


async def as_client(secured: Secured, client_id: str) -> dict[str, str]:
    assertion = client_assertion(KEY, client_id=client_id, token_url=TOKEN_URL, kid=f"{client_id}-1")
    return {"Authorization": f"Bearer {await secured.token(assertion)}"}


async def events(secured: Secured, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    answer = await secured.http.get("/fhir/AuditEvent", params={**params, "_count": "100"}, headers=headers)
    assert answer.status_code == 200, answer.text
    return [e["resource"] for e in answer.json().get("entry", [])]


def organisations(found: list[dict[str, Any]]) -> set[str]:
    return {e["agent"][1]["who"]["identifier"]["value"] for e in found}


async def test_audit_events_by_patient_agent_and_date(secured: Secured) -> None:
    trust, school, icb = [await as_client(secured, c) for c in ("trust-ehr", "school-mis", "icb-register")]
    assert (await secured.http.get("/fhir/Patient/amira", headers=trust)).status_code == 200
    assert (await secured.http.get("/fhir/Patient/amira", headers=school)).status_code == 403  # no relationship
    await secured.app.state.audit.flush()
    # The ICB (a data sharing agreement, AuditEvent access) sees every organisation's events ...
    about_amira = await events(secured, icb, patient="Patient/amira")
    assert organisations(about_amira) == {"RX4", "100001"}
    assert sorted(e["outcome"] for e in about_amira) == ["0", "4"]
    by_agent = await events(secured, icb, **{"agent:identifier": f"{CLIENT_SYSTEM}|trust-ehr"})
    assert by_agent and organisations(by_agent) == {"RX4"}
    today = datetime.now(UTC).date().isoformat()
    assert organisations(await events(secured, icb, date=today)) >= {"RX4", "100001"}
    refused = next(e for e in about_amira if e["outcome"] == "4")
    assert (await secured.http.get(f"/fhir/AuditEvent/{refused['id']}", headers=icb)).status_code == 200
    # ... a client only those of its own organisation, by search and by read alike.
    assert organisations(await events(secured, trust, patient="Patient/amira")) == {"RX4"}
    assert (await secured.http.get(f"/fhir/AuditEvent/{refused['id']}", headers=trust)).status_code == 403
    mine = await events(secured, school, patient="Patient/amira")
    assert [(e["outcome"], organisations([e])) for e in mine] == [("4", {"100001"})]
    assert (await secured.http.get(f"/fhir/AuditEvent/{refused['id']}", headers=school)).status_code == 200
