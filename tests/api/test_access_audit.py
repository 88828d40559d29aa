"""What access leaves behind: an AuditEvent for each refusal and each break-glass access (flagged with a code),
the people a Bundle's writes touched, and a Provenance for every client write however it is made (a Bundle,
a conditional update, a delete, a conditional delete), on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.audit.events import BREAK_GLASS, PURPOSE_SYSTEM
from gateway.settings import Settings
from tests.api.test_access_matrix import (
    COUNCIL,
    ICB,
    JSON,
    SCHOOL,
    STRANGER,
    TRUST,
    act_as,
    encounter,
    seed,
    transaction,
)
from tests.api.test_domain_api import API

GLASS = {"X-Break-Glass": "A&E attendance, unconscious, no other record"}


@pytest.fixture
async def app(client: httpx.AsyncClient) -> AsyncIterator[FastAPI]:
    """The client's app with its audit trail running (as under uvicorn), stopped (flushed) after the test. It
    writes only when the test flushes it: the rolled-back repository is one connection, which a flush in the
    background must not share with a request's transaction."""
    found: FastAPI = client._transport.app  # type: ignore[attr-defined]
    found.state.audit.interval = 3600.0
    await found.state.audit.start()
    yield found
    await found.state.audit.stop()


async def audit_events(app: FastAPI, *params: tuple[str, str]) -> list[dict[str, Any]]:
    """The AuditEvents written so far that match ``params`` (read from the store, as no caller)."""
    await app.state.audit.flush()
    found = await app.state.repository.search("AuditEvent", [*params, ("_count", "500"), ("_sort", "date")])
    return [orjson.loads(m.content) for m in found.matches]


def organisation(event: dict[str, Any]) -> str:
    return str(event["agent"][1]["who"]["identifier"]["value"])


def people(event: dict[str, Any]) -> set[str]:
    return {e["what"]["reference"] for e in event.get("entity", ()) if e.get("role", {}).get("code") == "1"}


def flagged(event: dict[str, Any]) -> bool:
    codes = [(c["system"], c["code"]) for p in event.get("purposeOfEvent", ()) for c in p.get("coding", ())]
    return (PURPOSE_SYSTEM, "BTG") in codes and BREAK_GLASS in event.get("meta", {}).get("security", [])


async def test_a_refused_read_leaves_a_minor_failure_naming_the_organisation_and_the_person(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await seed(client)
    act_as(client, STRANGER)
    assert (await client.get("/fhir/Patient/yp-bo")).status_code == 403
    act_as(client, SCHOOL)
    assert (await client.get(f"{API}/people/yp-amira-khan")).status_code == 403
    refused = await audit_events(app, ("outcome", "4"))
    assert [(organisation(e), people(e)) for e in refused] == [
        ("RZZ", {"Patient/yp-bo"}),
        ("190001", {"Patient/yp-amira-khan"}),
    ]
    assert all(e["outcomeDesc"] == "refused: no legitimate relationship" for e in refused)


async def test_break_glass_is_flagged_with_a_code_on_every_path(client: httpx.AsyncClient, app: FastAPI) -> None:
    await seed(client)
    act_as(client, STRANGER)  # an NHS provider with no relationship with Bo
    paths = [
        "/fhir/Patient/yp-bo",  # a read
        "/fhir/Condition?subject=Patient/yp-bo",  # a search
        "/fhir/Patient/yp-bo/_history",  # a history
        f"{API}/people/yp-bo",  # the domain API
        "/fhir/Patient/yp-bo/$everything",
        "/fhir/Patient/yp-bo/$summary",
    ]
    for path in paths:
        assert (await client.get(path, headers=GLASS)).status_code == 200, path
    found = await audit_events(app, ("purpose", f"{PURPOSE_SYSTEM}|BTG"))
    assert len(found) == len(paths)
    assert all(flagged(e) and people(e) == {"Patient/yp-bo"} and organisation(e) == "RZZ" for e in found)
    assert all(e["outcomeDesc"] == f"break-glass: {GLASS['X-Break-Glass']}" for e in found)
    # Access through a relationship is not flagged, even with the header.
    act_as(client, TRUST)
    assert (await client.get("/fhir/Patient/yp-amira-khan", headers=GLASS)).status_code == 200
    assert len(await audit_events(app, ("purpose", f"{PURPOSE_SYSTEM}|BTG"))) == len(paths)
    assert not any(flagged(e) for e in await audit_events(app, ("patient", "Patient/yp-amira-khan")))


async def test_a_bundle_write_names_the_people_it_touched(client: httpx.AsyncClient, app: FastAPI) -> None:
    await seed(client)
    act_as(client, TRUST)
    bundle = transaction(
        {"resource": encounter("t1", "yp-amira-khan"), "request": {"method": "PUT", "url": "Encounter/t1"}},
        {"request": {"method": "DELETE", "url": "Condition/yp-amira-khan-ld"}},
    )
    assert (await client.post("/fhir", json=bundle, headers=JSON)).status_code == 200
    [event] = [
        e
        for e in await audit_events(app, ("patient", "Patient/yp-amira-khan"))
        if e["subtype"][0]["code"] == "transaction"
    ]
    assert organisation(event) == "RX4"
    what = {e["what"]["reference"] for e in event["entity"] if "what" in e}
    assert {"Patient/yp-amira-khan", "Encounter/t1", "Condition/yp-amira-khan-ld"} <= what


async def provenance_of(client: httpx.AsyncClient, target: str) -> list[dict[str, Any]]:
    act_as(client, ICB)
    found = (await client.get("/fhir/Provenance", params={"target": target.split("/_history")[0]})).json()
    # The search matches any version of the target: keep the Provenance of this version.
    return [e["resource"] for e in found.get("entry", []) if e["resource"]["target"][0]["reference"] == target]


def activity(provenance: dict[str, Any]) -> str:
    return str(provenance["activity"]["coding"][0]["code"])


async def test_every_client_write_carries_its_provenance(client: httpx.AsyncClient) -> None:
    await seed(client)
    act_as(client, TRUST)
    bundle = transaction(
        {"resource": encounter("p1", "yp-amira-khan"), "request": {"method": "PUT", "url": "Encounter/p1"}},
        {"resource": encounter("p2", "yp-amira-khan"), "request": {"method": "POST", "url": "Encounter"}},
    )
    created = (await client.post("/fhir", json=bundle, headers=JSON)).json()["entry"]
    p2 = created[1]["response"]["location"].split("/")[1]
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": encounter("p3", "yp-amira-khan"), "request": {"method": "PUT", "url": "Encounter/p3"}}],
    }
    assert (await client.post("/fhir", json=batch, headers=JSON)).json()["entry"][0]["response"][
        "status"
    ] == "201 Created"
    assert (await client.put("/fhir/Encounter?_id=p1", json=encounter("p1", "yp-amira-khan"), headers=JSON)).is_success
    assert (await client.delete("/fhir/Encounter/p3")).status_code == 204
    assert (await client.delete("/fhir/Condition", params={"subject": "Patient/yp-amira-khan"})).status_code == 200
    expected = {
        "Encounter/p1/_history/1": "CREATE",  # the transaction's PUT created it
        f"Encounter/{p2}/_history/1": "CREATE",
        "Encounter/p3/_history/1": "CREATE",  # the batch
        "Encounter/p1/_history/2": "UPDATE",  # the conditional update
        "Encounter/p3/_history/2": "DELETE",  # the delete
        "Condition/yp-amira-khan-ld/_history/2": "DELETE",  # the conditional delete
        "Condition/yp-amira-khan-autism/_history/2": "DELETE",
    }
    for target, code in expected.items():
        [provenance] = await provenance_of(client, target)
        assert activity(provenance) == code, target
        assert provenance["agent"][0]["who"]["identifier"]["value"] == "trust-ehr"
        assert provenance["agent"][0]["onBehalfOf"]["identifier"]["value"] == "RX4"
        act_as(client, TRUST)


async def test_a_refused_write_carries_no_provenance_and_is_audited(client: httpx.AsyncClient, app: FastAPI) -> None:
    await seed(client)
    act_as(client, COUNCIL)
    assert (await client.delete("/fhir/Condition", params={"subject": "Patient/yp-bo"})).status_code == 403
    assert await provenance_of(client, "Condition/yp-bo-ld/_history/2") == []
    [refused] = await audit_events(app, ("outcome", "4"), ("patient", "Patient/yp-bo"))
    assert organisation(refused) == "LA901" and refused["subtype"][0]["code"] == "delete"
    assert refused["outcomeDesc"] == "refused: write without a legitimate relationship"


async def test_no_client_writes_the_audit_trail(client: httpx.AsyncClient, app: FastAPI) -> None:
    await seed(client)
    act_as(client, TRUST)
    body = encounter("enc-trail", "yp-amira-khan")
    made = await client.put("/fhir/Encounter/enc-trail", content=orjson.dumps(body), headers=JSON)
    assert made.status_code == 201, made.text
    [provenance] = await provenance_of(client, "Encounter/enc-trail/_history/1")
    forged = {
        "resourceType": "AuditEvent",
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110"},
        "recorded": "2026-12-01T10:00:00Z",
        "agent": [{"requestor": True}],
        "source": {"observer": {"display": "forger"}},
    }
    act_as(client, ICB)  # even an organisation that reads the whole trail
    refused = await client.post("/fhir/AuditEvent", content=orjson.dumps(forged), headers=JSON)
    assert refused.status_code == 403 and "audit trail" in refused.text
    gone = await client.delete(f"/fhir/Provenance/{provenance['id']}")
    assert gone.status_code == 403
    batch = transaction({"request": {"method": "DELETE", "url": f"Provenance/{provenance['id']}"}})
    assert (await client.post("/fhir", content=orjson.dumps(batch), headers=JSON)).status_code == 403
    assert (await client.get(f"/fhir/Provenance/{provenance['id']}")).status_code == 200  # still there
    assert [e["outcomeDesc"] for e in await audit_events(app, ("outcome", "4"))].count(
        "refused: a client write to the audit trail"
    ) >= 2


@pytest.fixture
async def committed_client(fresh_db_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app on a database of its own: a Subscription's owner is recorded on a connection of its own."""
    made = create_app(Settings(home=tmp_path, database_url=fresh_db_url, auth="off"))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=made), base_url="http://gateway.test") as c:
        yield c
    await made.state.engine.dispose()


async def test_only_the_organisation_that_made_a_subscription_sees_or_changes_it(
    committed_client: httpx.AsyncClient,
) -> None:
    """A Subscription's channel may carry the receiver's credentials: it is its maker's alone."""
    client = committed_client
    sid = "sub-ehr-ratings"
    subscription = {
        "resourceType": "Subscription",
        "id": sid,
        "status": "requested",
        "reason": "tell the EHR about rating changes",
        "criteria": "Flag?status=active",
        "channel": {
            "type": "rest-hook",
            "endpoint": "https://ehr.example/hook",
            "payload": "application/fhir+json",
            "header": ["Authorization: Bearer receivers-secret"],
        },
    }
    act_as(client, TRUST)
    made = await client.put(f"/fhir/Subscription/{sid}", content=orjson.dumps(subscription), headers=JSON)
    assert made.status_code == 201, made.text
    assert (await client.get(f"/fhir/Subscription/{sid}")).json()["channel"]["header"] == subscription["channel"][
        "header"
    ]
    act_as(client, COUNCIL)
    read = await client.get(f"/fhir/Subscription/{sid}")
    assert read.status_code == 403 and "receivers-secret" not in read.text
    found = (await client.get("/fhir/Subscription", params={"_id": sid})).json()
    assert found.get("entry", []) == [] and "receivers-secret" not in orjson.dumps(found).decode()
    history = await client.get("/fhir/Subscription/_history")
    assert "receivers-secret" not in history.text
    assert (await client.delete(f"/fhir/Subscription/{sid}")).status_code == 403
    changed = {**subscription, "channel": {**subscription["channel"], "endpoint": "https://attacker.example/"}}
    assert (
        await client.put(f"/fhir/Subscription/{sid}", content=orjson.dumps(changed), headers=JSON)
    ).status_code == 403
    act_as(client, TRUST)
    assert (await client.get(f"/fhir/Subscription/{sid}")).json()["channel"]["endpoint"] == "https://ehr.example/hook"
