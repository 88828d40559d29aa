"""The console's destinations page over ASGI, on SQLite and PostgreSQL (a committed database: destinations made
through the API and Subscriptions are read by the sync engine's directory on its own connections): the file's
destinations, those made through the API and the Subscriptions' each appear with their own health figures."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from gateway.app import create_app
from gateway.console import views
from gateway.console.operators import add_operator, operators_path
from gateway.settings import Settings
from gateway.store.db import create_engine
from gateway.store.timeutil import now_us
from gateway.sync.destinations import Destination
from gateway.sync.directory import Snapshot
from gateway.sync.subscriptions import Criteria, SubscriptionTarget
from gateway.sync.tables import delivery, delivery_attempt
from tests.console.test_console_parts import PASSWORD, csrf_of

FILE = """
[[destination]]
name = "from-file"
connector = "fhir"
endpoint = "http://destination.test/fhir"
recipient = "nhs-provider"
"""
HOUR = 3_600_000_000


def made(name: str, connector: str = "fhir") -> Destination:
    return Destination.model_validate(
        {"name": name, "connector": connector, "endpoint": "http://x.test/fhir", "recipient": "nhs-provider"}
    )


def test_every_destination_is_listed_with_where_it_was_made() -> None:
    sub = made("subscription-sub-1", "rest-hook")
    target = SubscriptionTarget("sub-1", Criteria("Flag", ()), None, sub)  # type: ignore[arg-type]
    snapshot = Snapshot(
        {d.name: d for d in (made("zeta-file"), made("alpha-file"), made("made-b"), made("made-a"), sub)},
        subscriptions={sub.name: target},
    )
    found = [(source, d.name) for source, d in views.listed(snapshot, {"zeta-file", "alpha-file"})]
    assert found == [
        ("destinations file", "zeta-file"),  # the file's order
        ("destinations file", "alpha-file"),
        ("API", "made-a"),
        ("API", "made-b"),
        ("Subscription/sub-1", "subscription-sub-1"),
    ]


@pytest.fixture
async def console(fresh_db_url: str, tmp_path: Path) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    (tmp_path / "destinations.toml").write_text(FILE)
    settings = Settings(
        home=tmp_path,
        database_url=fresh_db_url,  # type: ignore[arg-type]
        destinations_file=tmp_path / "destinations.toml",
        auth="off",  # type: ignore[arg-type]
    )
    add_operator(operators_path(settings), "jo", "QX9", "icb", PASSWORD)
    app = create_app(settings)
    await app.state.audit.start()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as c:
        yield app, c
    await app.state.audit.stop()
    await app.state.engine.dispose()


async def deliveries(url: str, destination: str, outcomes: list[tuple[str, str]]) -> None:
    """One delivery per (status, attempt outcome), its attempt made a minute ago."""
    engine = create_engine(Settings(database_url=url))  # type: ignore[arg-type]
    now = now_us()
    async with engine.begin() as conn:
        for n, (status, outcome) in enumerate(outcomes):
            row = {
                "destination": destination,
                "lane": 0,
                "outbox_id": 1000 + n,
                "res_type": "Patient",
                "res_id": f"p{n}",
                "version_id": 1,
                "method": "update",
                "status": status,
                "attempts": 1,
                "next_attempt_at": now,
                "created_at": now - HOUR,
                "finished_at": now - 60_000_000 if status != "pending" else None,
            }
            found = await conn.execute(insert(delivery).values(**row).returning(delivery.c.id))
            attempt = {"at": now - 60_000_000, "outcome": outcome, "status": 200, "duration_ms": 5}
            await conn.execute(insert(delivery_attempt).values(delivery_id=found.scalar_one(), **attempt))
    await engine.dispose()


def table_rows(html: str) -> dict[str, list[str]]:
    body = html.split('<table id="destinations">')[1].split("<tbody>")[1].split("</tbody>")[0]
    rows = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = [
            unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)
        ]
        rows[cells[0]] = cells[1:]
    return rows


async def test_the_page_shows_file_api_and_subscription_destinations_with_their_health(
    console: tuple[Any, httpx.AsyncClient], fresh_db_url: str
) -> None:
    _app, client = console
    api_made = {
        "name": "ics-record",
        "connector": "fhir",
        "endpoint": "http://destination.test/fhir",
        "recipient": "local-authority",
    }
    assert (await client.post("/admin/destinations", json=api_made)).status_code == 201
    subscription = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "keyworker changes",
        "criteria": "Flag?status=active",
        "channel": {"type": "rest-hook", "endpoint": "http://receiver.test/hook", "payload": "application/fhir+json"},
    }
    created = await client.post(
        "/fhir/Subscription", json=subscription, headers={"Content-Type": "application/fhir+json"}
    )
    assert created.status_code == 201, created.text
    sub_id = created.json()["id"]
    await deliveries(fresh_db_url, "ics-record", [("delivered", "delivered"), ("pending", "retry")])
    await deliveries(fresh_db_url, f"subscription-{sub_id}", [("dead", "dead")])

    csrf = csrf_of(await client.get("/console/signin"))
    await client.post("/console/signin", data={"name": "jo", "password": PASSWORD, "csrf": csrf})
    page = await client.get("/console/destinations")
    assert page.status_code == 200
    rows = table_rows(page.text)
    assert list(rows) == ["from-file", "ics-record", f"subscription-{sub_id}"]
    # Source, connector, recipient, health, queue depth, delivered, dead letters, last success, error rate
    source, connector, recipient, health, queue, delivered, dead, last_success, error_rate = rows["ics-record"]
    assert (source, connector, recipient) == ("API", "fhir", "local-authority")
    assert (health, queue, delivered, dead, error_rate) == ("failing", "1", "1", "0", "50.0%")
    assert last_success != "never"
    source, connector, recipient, health, queue, delivered, dead, last_success, error_rate = rows[
        f"subscription-{sub_id}"
    ]
    assert (source, connector, recipient) == (f"Subscription/{sub_id}", "rest-hook", "nhs-provider")
    assert (health, queue, delivered, dead, last_success, error_rate) == ("failing", "0", "0", "1", "never", "100.0%")
    assert rows["from-file"] == ["destinations file", "fhir", "nhs-provider", "idle", "0", "0", "0", "never", "0.0%"]

    log = await client.get("/console/messages")
    options = re.findall(r'<option value="([^"]*)"', log.text.split('name="destination"')[1].split("</select>")[0])
    assert {"from-file", "ics-record", f"subscription-{sub_id}"} <= set(options)

    assert (await client.delete("/admin/destinations/ics-record")).status_code in (200, 204)
    after = table_rows((await client.get("/console/destinations")).text)
    assert list(after) == ["from-file", f"subscription-{sub_id}"]
