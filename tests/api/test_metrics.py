"""Prometheus /metrics: latency by route template (never a raw path with an id), deliveries, HL7 counts.

The figures are read for their values: a request adds one to its route template's histogram, a delivery that
arrives or is refused moves its destination's count from pending to delivered or dead, and a stored HL7 v2 message
adds one to its sender's, type's and outcome's count.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.fake.fhir_server import create_app as create_fake_destination
from connectors.fhir.config import FhirConfig
from connectors.fhir.connector import FhirConnector
from gateway.app import create_app
from gateway.hl7v2.inbox import HL7Inbox, InboxItem
from gateway.settings import Settings
from gateway.store.repository import SqlFhirRepository
from gateway.sync.deliver import drain_lane
from gateway.sync.destinations import Destination
from gateway.sync.relay import relay_once

RAW = b"MSH|^~\\&|PAS|RX9|KWG|KWG|20261125103000||ADT^A01|C1|P|2.4\rPID|||9449305552^^^NHS^NH\r"


def figure(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample (labels in any order), or None when the exposition has no such sample."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', match.group(2)))
        if found == labels:
            return float(match.group(3))
    return None


async def test_metrics_label_routes_by_template(client: httpx.AsyncClient) -> None:
    await client.get("/fhir/Patient/someone-in-particular")
    await client.get("/fhir/metadata")
    text = (await client.get("/metrics")).text
    assert (
        'kwg_http_request_duration_seconds_count{method="GET",route="/fhir/{res_type}/{res_id}",status="404"} 1.0'
        in text
    )
    assert 'route="/fhir/metadata"' in text
    assert "someone-in-particular" not in text
    assert "# TYPE kwg_deliveries gauge" in text and "# TYPE kwg_hl7_messages gauge" in text


async def test_each_request_is_counted_under_its_route_template(client: httpx.AsyncClient) -> None:
    route = {"route": "/fhir/{res_type}/{res_id}", "method": "GET", "status": "404"}
    before = (await client.get("/metrics")).text
    assert figure(before, "kwg_http_request_duration_seconds_count", **route) is None
    for n in range(3):
        assert (await client.get(f"/fhir/Patient/nobody-{n}")).status_code == 404
    after = (await client.get("/metrics")).text
    assert figure(after, "kwg_http_request_duration_seconds_count", **route) == 3.0
    assert figure(after, "kwg_http_request_duration_seconds_bucket", **route, le="+Inf") == 3.0
    total = figure(after, "kwg_http_request_duration_seconds_sum", **route)
    assert total is not None and 0 < total < 30
    metadata = {"route": "/fhir/metadata", "method": "GET", "status": "200"}
    assert (await client.get("/fhir/metadata")).status_code == 200
    scraped = (await client.get("/metrics")).text
    assert figure(scraped, "kwg_http_request_duration_seconds_count", **metadata) == 1.0
    assert figure(scraped, "kwg_http_request_duration_seconds_count", **route) == 3.0  # the others unchanged
    # The two scrapes before this one are counted under their own template (this one once it has answered).
    scrape = {"route": "/metrics", "method": "GET", "status": "200"}
    assert figure(scraped, "kwg_http_request_duration_seconds_count", **scrape) == 2.0


@pytest.fixture
async def committed(fresh_db_url: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, AsyncEngine]]:
    """The app on a database of its own (the sync engine and the inbox commit), and its engine."""
    app = create_app(Settings(home=tmp_path, database_url=fresh_db_url, auth="off"))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as c:
        yield c, app.state.engine
    await app.state.engine.dispose()


async def test_deliveries_move_from_pending_to_delivered_or_dead(
    committed: tuple[httpx.AsyncClient, AsyncEngine],
) -> None:
    client, engine = committed
    store = SqlFhirRepository(engine)
    dest = Destination.model_validate(
        {"name": "trust-record", "connector": "fhir", "endpoint": "http://destination.test/fhir", "lanes": 1}
        | {"recipient": "nhs-provider", "max_attempts": 1}
    )
    fake = httpx.ASGITransport(app=create_fake_destination())
    connector = FhirConnector(FhirConfig(endpoint="http://destination.test/fhir"), transport=fake)  # type: ignore[arg-type]

    async def scrape(status: str) -> float | None:
        return figure((await client.get("/metrics")).text, "kwg_deliveries", destination="trust-record", status=status)

    try:
        assert await scrape("pending") is None
        await store.update("Patient", "p1", {"resourceType": "Patient", "id": "p1", "gender": "female"})
        await relay_once(engine, [dest])
        assert (await scrape("pending"), await scrape("delivered")) == (1.0, None)
        await drain_lane(engine, store, dest, connector, 0, owner="test")
        assert (await scrape("pending"), await scrape("delivered")) == (None, 1.0)

        async with httpx.AsyncClient(transport=fake, base_url="http://destination.test") as faults:
            assert (await faults.post("/_faults", json={"reject_ids": ["Patient/p2"]})).status_code == 200
        await store.update("Patient", "p2", {"resourceType": "Patient", "id": "p2", "gender": "male"})
        await relay_once(engine, [dest])
        await drain_lane(engine, store, dest, connector, 0, owner="test")
        assert (await scrape("pending"), await scrape("delivered"), await scrape("dead")) == (None, 1.0, 1.0)
    finally:
        await connector.aclose()


async def test_a_stored_hl7_message_is_counted(committed: tuple[httpx.AsyncClient, AsyncEngine]) -> None:
    client, engine = committed
    facility = uuid.uuid4().hex[:12]

    async def scrape(outcome: str, message_type: str = "ADT^A01") -> float | None:
        text = (await client.get("/metrics")).text
        return figure(text, "kwg_hl7_messages", sending_facility=facility, message_type=message_type, outcome=outcome)

    assert await scrape("stored") is None
    inbox = HL7Inbox(engine, count_interval=0)
    await inbox.start()
    try:
        item = InboxItem("PAS", facility, "C1", "ADT^A01", "9449305552", "127.0.0.1:1", RAW)
        await inbox.append(item)
        await inbox.append(InboxItem("PAS", facility, "C2", "ADT^A01", "9449305552", "127.0.0.1:1", RAW))
        await inbox.append(item)  # the same sender and control id again: a duplicate, stored once
        inbox.count(facility, "ADT^A08", "not_in_cohort")
    finally:
        await inbox.stop()
    assert await scrape("stored") == 2.0
    assert await scrape("duplicate") == 1.0
    assert await scrape("not_in_cohort", "ADT^A08") == 1.0
