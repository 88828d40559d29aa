"""The sync engine in one process on SQLite and PostgreSQL: relay, lanes, retries, dead letters, replay, sharing.

The destination is the fake FHIR server (``connectors.fake.fhir_server``) over httpx's ASGI transport; the store,
the relay and the lanes are the real ones on a real database. Process-level faults (killed workers, Redis down,
timeouts) are in ``test_processes.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.fhir.connector import FhirConnector
from gateway.store.models import outbox
from gateway.store.repository import SqlFhirRepository
from gateway.sync import deliveries
from gateway.sync.deliver import drain_lane
from gateway.sync.destinations import Destination
from gateway.sync.relay import relay_once
from gateway.sync.sharing import Recipient
from gateway.sync.tables import delivery
from tests.sync.conftest import destination


async def patient(store: SqlFhirRepository, pid: str, family: str) -> None:
    await store.update("Patient", pid, {"resourceType": "Patient", "id": pid, "name": [{"family": family}]})


async def encounter(store: SqlFhirRepository, eid: str, pid: str, status: str = "finished") -> None:
    body = {
        "resourceType": "Encounter",
        "id": eid,
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
        "subject": {"reference": f"Patient/{pid}"},
        "participant": [{"individual": {"display": "Kim Ashworth"}}],
    }
    await store.update("Encounter", eid, body)


async def drain_all(
    engine: AsyncEngine, store: SqlFhirRepository, dest: Destination, connector: FhirConnector, *, rounds: int = 300
) -> None:
    """Relay and drain every lane until nothing is pending (retries wait their short backoff)."""
    for _ in range(rounds):
        await relay_once(engine, [dest])
        for lane in range(dest.lanes):
            await drain_lane(engine, store, dest, connector, lane, owner="test")
        if not (await deliveries.counts(engine)).get(dest.name, {}).get("pending"):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("deliveries still pending")


async def arrived(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    return list((await client.get("/_log")).json()["changes"])


async def faults(client: httpx.AsyncClient, **plan: Any) -> None:
    assert (await client.post("/_faults", json=plan)).status_code == 200


async def test_every_change_arrives_once_in_order(
    sync_engine: AsyncEngine, store: SqlFhirRepository, connector: FhirConnector, destination_client: httpx.AsyncClient
) -> None:
    dest = destination()
    for version in range(1, 4):
        await patient(store, "p1", f"Khan-{version}")
        await encounter(store, f"e{version}", "p1")
    await patient(store, "p2", "Okafor")
    await drain_all(sync_engine, store, dest, connector)
    log = await arrived(destination_client)
    p1 = [c for c in log if c["url"] in ("Patient/p1", "Encounter/e1", "Encounter/e2", "Encounter/e3")]
    assert [c["url"] for c in p1] == [
        "Patient/p1",
        "Encounter/e1",
        "Patient/p1",
        "Encounter/e2",
        "Patient/p1",
        "Encounter/e3",
    ]
    assert [c["resource"]["name"][0]["family"] for c in p1 if c["url"] == "Patient/p1"] == [
        "Khan-1",
        "Khan-2",
        "Khan-3",
    ]
    assert [c["url"] for c in log].count("Patient/p2") == 1
    counts = await deliveries.counts(sync_engine)
    assert counts == {dest.name: {"delivered": 7}}


async def test_transient_failures_are_retried_until_they_arrive(
    sync_engine: AsyncEngine, store: SqlFhirRepository, connector: FhirConnector, destination_client: httpx.AsyncClient
) -> None:
    dest = destination(lanes=1)
    await faults(destination_client, plan=["500", "503", "429:0"])
    await patient(store, "p1", "Khan")
    await drain_all(sync_engine, store, dest, connector)
    assert [c["url"] for c in await arrived(destination_client)] == ["Patient/p1"]
    [row] = await deliveries.list_deliveries(sync_engine)
    view, attempts = await deliveries.get_delivery(sync_engine, row.id) or (None, [])
    assert [(a.outcome, a.status) for a in attempts] == [
        ("retry", 500),
        ("retry", 503),
        ("retry", 429),
        ("delivered", 200),
    ]
    assert view is not None and view.status == "delivered" and view.last_error is None


async def test_out_of_attempts_becomes_a_dead_letter_and_replays(
    sync_engine: AsyncEngine, store: SqlFhirRepository, connector: FhirConnector, destination_client: httpx.AsyncClient
) -> None:
    dest = destination(lanes=1, max_attempts=3)
    await faults(destination_client, plan=["500"] * 3)
    await patient(store, "p1", "Khan")
    await drain_all(sync_engine, store, dest, connector)
    [dead] = await deliveries.list_deliveries(sync_engine, status="dead")
    assert dead.attempts == 3 and dead.last_error is not None and "gave up after 3 attempts" in dead.last_error
    assert await arrived(destination_client) == []
    assert await deliveries.replay(sync_engine, [dead.id]) == [(dest.name, 0)]
    await drain_all(sync_engine, store, dest, connector)
    assert [c["url"] for c in await arrived(destination_client)] == ["Patient/p1"]


async def test_a_refused_change_is_a_dead_letter_and_the_rest_arrive(
    sync_engine: AsyncEngine, store: SqlFhirRepository, connector: FhirConnector, destination_client: httpx.AsyncClient
) -> None:
    dest = destination(lanes=1)
    await faults(destination_client, reject_ids=["Patient/poison"])
    for pid in ("p1", "poison", "p2"):
        await patient(store, pid, pid)
    await drain_all(sync_engine, store, dest, connector)
    assert [c["url"] for c in await arrived(destination_client)] == ["Patient/p1", "Patient/p2"]
    [dead] = await deliveries.list_deliveries(sync_engine, status="dead")
    assert dead.resource == "Patient/poison"
    assert dead.last_error is not None and "refused by this destination" in dead.last_error
    await faults(destination_client, reject_ids=[])  # the destination is fixed
    await deliveries.replay(sync_engine, await deliveries.dead_letter_ids(sync_engine))
    await drain_all(sync_engine, store, dest, connector)
    assert [c["url"] for c in await arrived(destination_client)] == ["Patient/p1", "Patient/p2", "Patient/poison"]


async def test_a_failing_head_holds_back_the_patients_later_changes(
    sync_engine: AsyncEngine, store: SqlFhirRepository, connector: FhirConnector, destination_client: httpx.AsyncClient
) -> None:
    dest = destination(lanes=1, backoff_base_seconds=30, backoff_max_seconds=30)
    await patient(store, "p1", "v1")
    await relay_once(sync_engine, [dest])
    await faults(destination_client, plan=["500"])
    report = await drain_lane(sync_engine, store, dest, connector, 0, owner="test")
    assert report.retry_in is not None and report.retry_in >= 15
    await patient(store, "p1", "v2")
    await relay_once(sync_engine, [dest])
    again = await drain_lane(sync_engine, store, dest, connector, 0, owner="test")
    assert again.delivered == 0  # v2 waits behind v1
    assert await arrived(destination_client) == []
    async with sync_engine.begin() as conn:  # the backoff is over
        await conn.execute(update(delivery).values(next_attempt_at=0))
    await drain_lane(sync_engine, store, dest, connector, 0, owner="test")
    assert [c["resource"]["name"][0]["family"] for c in await arrived(destination_client)] == ["v1", "v2"]


async def test_a_duplicate_event_changes_nothing_at_the_destination(
    sync_engine: AsyncEngine, store: SqlFhirRepository, connector: FhirConnector, destination_client: httpx.AsyncClient
) -> None:
    dest = destination()
    await patient(store, "p1", "Khan")
    await drain_all(sync_engine, store, dest, connector)
    async with sync_engine.begin() as conn:
        event = (await conn.execute(select(outbox))).one()._mapping
        await conn.execute(insert(outbox).values({k: v for k, v in event.items() if k not in ("id", "relayed_at")}))
        await conn.execute(update(outbox).where(outbox.c.id == event["id"]).values(relayed_at=None))
    await drain_all(sync_engine, store, dest, connector)  # the same event again, and a duplicate of it
    log = (await destination_client.get("/_log")).json()
    assert [c["url"] for c in log["changes"]] == ["Patient/p1"]  # it arrived, and exactly once took effect
    assert log["entries"] == 2  # the duplicate was sent (at least once) and changed nothing
    assert (await deliveries.counts(sync_engine))[dest.name] == {"delivered": 2}


async def test_sharing_profiles_limit_what_each_recipient_gets(
    sync_engine: AsyncEngine, store: SqlFhirRepository, connector: FhirConnector, destination_client: httpx.AsyncClient
) -> None:
    school = destination("school", Recipient.SCHOOL, lanes=1)
    await patient(store, "p1", "Khan")
    await encounter(store, "e1", "p1")
    await store.update(
        "Condition",
        "c1",
        {
            "resourceType": "Condition",
            "id": "c1",
            "code": {"text": "Autism"},
            "subject": {"reference": "Patient/p1"},
        },
    )
    await drain_all(sync_engine, store, school, connector)
    log = await arrived(destination_client)
    assert [c["url"] for c in log] == ["Patient/p1", "Encounter/e1"]  # no Condition: clinical detail
    assert "participant" not in log[1]["resource"]  # the school's profile has no participants
    assert [r.resource for r in await deliveries.list_deliveries(sync_engine)] == ["Patient/p1", "Encounter/e1"]


async def test_relaying_twice_creates_no_second_delivery(sync_engine: AsyncEngine, store: SqlFhirRepository) -> None:
    dest = destination()
    await patient(store, "p1", "Khan")
    first = await relay_once(sync_engine, [dest])
    async with sync_engine.begin() as conn:
        await conn.execute(update(outbox).values(relayed_at=None))
    second = await relay_once(sync_engine, [dest])
    assert first.deliveries == second.deliveries == 1  # offered twice ...
    assert len(await deliveries.list_deliveries(sync_engine)) == 1  # ... stored once


async def consent(store: SqlFhirRepository, pid: str, status: str) -> None:
    body = {
        "resourceType": "Consent",
        "id": f"{pid}-consent",
        "status": status,
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": [{"text": "Inclusion on the Dynamic Support Register"}],
        "patient": {"reference": f"Patient/{pid}"},
    }
    await store.update("Consent", f"{pid}-consent", body)


async def test_withdrawn_consent_stops_outbound_sync_for_that_person(
    sync_engine: AsyncEngine, store: SqlFhirRepository, connector: FhirConnector, destination_client: httpx.AsyncClient
) -> None:
    dest = destination()
    for pid in ("p1", "p2"):
        await patient(store, pid, "before")
        await consent(store, pid, "active")
    await drain_all(sync_engine, store, dest, connector)
    await consent(store, "p1", "inactive")  # p1 withdraws consent
    await patient(store, "p1", "after")
    await patient(store, "p2", "after")
    await encounter(store, "e1", "p1")
    await drain_all(sync_engine, store, dest, connector)
    log = [
        (c["url"], c.get("resource", {}).get("name", [{}])[0].get("family")) for c in await arrived(destination_client)
    ]
    assert ("Patient/p2", "after") in log
    assert ("Patient/p1", "after") not in log and ("Encounter/e1", None) not in log
    withheld = await deliveries.list_deliveries(sync_engine, status="withheld")
    assert {d.resource for d in withheld} == {"Consent/p1-consent", "Patient/p1", "Encounter/e1"}
    assert all(d.last_error == "consent withdrawn: not sent" for d in withheld)
    await consent(store, "p1", "active")  # consent given again: sync resumes
    await patient(store, "p1", "again")
    await drain_all(sync_engine, store, dest, connector)
    assert ("Patient/p1", "again") in [
        (c["url"], c.get("resource", {}).get("name", [{}])[0].get("family")) for c in await arrived(destination_client)
    ]


async def test_a_lane_lease_is_one_owners_until_it_lapses_or_is_released(sync_engine: AsyncEngine) -> None:
    assert await deliveries.claim_lane(
        sync_engine, "ehr", 3, "worker-a", 60
    )  # a new lane: its row is made, the lease taken
    assert not await deliveries.claim_lane(sync_engine, "ehr", 3, "worker-b", 60)  # live and someone else's
    assert await deliveries.claim_lane(sync_engine, "ehr", 3, "worker-a", 60)  # the owner extends it
    assert await deliveries.claim_lane(sync_engine, "ehr", 4, "worker-b", 60)  # another lane is free
    await deliveries.release_lane(sync_engine, "ehr", 3, "worker-b")  # not the owner: nothing changes
    assert not await deliveries.claim_lane(sync_engine, "ehr", 3, "worker-b", 60)
    await deliveries.release_lane(sync_engine, "ehr", 3, "worker-a")
    assert await deliveries.claim_lane(sync_engine, "ehr", 3, "worker-b", 0)  # released: anyone may take it
    await asyncio.sleep(0.01)
    assert await deliveries.claim_lane(sync_engine, "ehr", 3, "worker-a", 60)  # a lapsed lease (0 s) is taken over


async def test_a_consent_that_denies_a_kind_of_recipient_withholds_from_it_alone(
    sync_engine: AsyncEngine, store: SqlFhirRepository
) -> None:
    from mappings.keyworking.consent import to_fhir as consent_to_fhir
    from mappings.keyworking.records import ConsentDecision
    from mappings.keyworking.terminology import ConsentCategory

    decision = ConsentDecision.model_validate(
        {
            "basis": "consent",
            "status": "given",
            "decided_by": {"name": "Parent of the young person"},
            "decided_at": "2026-11-02T10:00:00+00:00",
            "provisions": [
                {"choice": "permit", "recipients": ["nhs-provider"]},
                {"choice": "deny", "recipients": ["local-authority", "school"]},
            ],
        }
    )
    body = consent_to_fhir(
        decision, consent_id="p3-consent", person_id="p3", category=ConsentCategory.CETR_INFORMATION_SHARING
    )
    await store.update("Consent", "p3-consent", body)
    await patient(store, "p3", "Shared")
    trust, council = destination("trust"), destination("council", Recipient.LOCAL_AUTHORITY)
    await relay_once(sync_engine, [trust, council])
    rows = {(d.destination, d.resource): d for d in await deliveries.list_deliveries(sync_engine)}
    assert rows[("trust", "Patient/p3")].status == "pending"
    withheld = rows[("council", "Patient/p3")]
    assert (
        withheld.status == "withheld" and withheld.last_error == "consent denies sharing with local-authority: not sent"
    )
