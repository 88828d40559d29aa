"""Register alerts from ADT messages: times in London (BST and GMT), the decision table, the processor on both
databases (admission → blue + post-admission C(E)TR Task, discharge → the post-discharge rating, cancel → restored),
and end to end: an A01 over a real MLLP socket reaches the register through ``kwg serve``'s own worker."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import hl7.mllp
import httpx
import pytest

from gateway.hl7v2.alerts import AlertSettings, HospitalEvent, decide
from gateway.hl7v2.log import StoredMessage
from gateway.hl7v2.processing import Hl7Processor, hospital_event
from gateway.register.apply import RegisterRules
from gateway.store.repository import SqlFhirRepository
from mappings.hl7v2.times import hl7_time
from mappings.hl7v2.tokenizer import HL7ParseError, parse
from mappings.keyworking.terminology import DsrRating
from tests.api.test_domain_api import API, record
from tests.processes import running_gateway
from tests.register.builders import rating
from tests.servers import _free_port

NHS = "9990011133"  # the sample person's NHS number (tests/mappings/records/person.json)
SETTINGS = AlertSettings(wards=frozenset({"MHU1"}))


def adt(
    trigger: str, *, ward: str = "MHU1", patient_class: str = "I", when: str = "20260710143000", control: str = ""
) -> bytes:
    segments = [
        f"MSH|^~\\&|PAS|RX4|KWG|KWG|{when}||ADT^{trigger}^ADT_A01|{control or trigger + when}|P|2.4",
        f"EVN|{trigger}|{when}",
        f"PID|1||{NHS}^^^NHS^NH||KHAN^AMIRA||20110504|F",
        f"PV1|1|{patient_class}|{ward}^BAY2^BED4^RX4||||||||||||||||V{when}||||||||||||||||||||||||||{when}",
    ]
    return "\r".join(segments).encode()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20260710143000", datetime(2026, 7, 10, 13, 30, tzinfo=UTC)),  # BST: UTC+1
        ("20261210143000", datetime(2026, 12, 10, 14, 30, tzinfo=UTC)),  # GMT
        ("202607101430+0000", datetime(2026, 7, 10, 14, 30, tzinfo=UTC)),
        ("20260710", datetime(2026, 7, 9, 23, 0, tzinfo=UTC)),  # midnight London is 23:00 UTC in summer
    ],
)
def test_hl7_times_are_london_time_unless_they_say_otherwise(text: str, expected: datetime) -> None:
    assert hl7_time(text, "EVN-2") == expected


@pytest.mark.parametrize("text", ["2026071", "2026-07-10", "20261310", "202607101430+00"])
def test_a_bad_time_names_the_field(text: str) -> None:
    with pytest.raises(HL7ParseError, match="EVN-2"):
        hl7_time(text, "EVN-2")


def event(trigger: str, **facts: str) -> HospitalEvent:
    return hospital_event(parse(adt(trigger, **facts).decode()))


def test_the_decision_table() -> None:
    amber, blue = rating(DsrRating.AMBER, "2026-07-01"), rating(DsrRating.BLUE, "2026-07-10")
    admitted = decide(event("A01"), (amber,), SETTINGS)
    assert admitted is not None and admitted.rating.value == "blue" and "MHU1" in admitted.reason
    assert decide(event("A01", ward="GEN3"), (amber,), SETTINGS) is None  # not a mental-health ward
    assert decide(event("A01", patient_class="O"), (amber,), SETTINGS) is None  # not an inpatient
    assert decide(event("A01"), (amber, blue), SETTINGS) is None  # already blue
    discharged = decide(event("A03"), (amber, blue), SETTINGS)
    assert discharged is not None and discharged.rating.value == "red" and discharged.next_review_days == 14
    restored = decide(event("A11"), (amber, blue), SETTINGS)
    assert restored is not None and restored.rating.value == "amber"


async def setup_entry(client: httpx.AsyncClient) -> None:
    assert (await client.put(f"{API}/people/yp-amira-khan", json=record("person"))).status_code == 201
    entry = {**record("register-entry"), "id": "dsr-hl7"}
    assert (await client.put(f"{API}/register-entries/dsr-hl7", json=entry)).status_code == 201


async def ratings(client: httpx.AsyncClient) -> list[str]:
    items = (await client.get(f"{API}/register-entries/dsr-hl7/ratings")).json()["items"]
    return [r["rating"] for r in items]


async def test_the_processor_raises_and_undoes_alerts(client: httpx.AsyncClient, repo: SqlFhirRepository) -> None:
    await setup_entry(client)
    before = await ratings(client)
    processor = Hl7Processor(repo, RegisterRules(), SETTINGS)
    for n, trigger in enumerate(("A01", "A11", "A01", "A03")):
        raw = adt(trigger, when=f"2026071{n}143000")
        await processor(StoredMessage(n, "RX4", f"C{n}", f"ADT^{trigger}", NHS, raw))
    assert await ratings(client) == [*before, "blue", before[-1], "blue", "red"]
    tasks = (await client.get(f"{API}/tasks", params={"person_id": "yp-amira-khan"})).json()["items"]
    assert "post-admission-cetr" in {t["task_type"] for t in tasks}
    # Someone outside the register, and a message with no NHS number, change nothing.
    await processor(StoredMessage(9, "RX4", "C9", "ADT^A01", None, adt("A01").replace(NHS.encode(), b"9990000018")))
    assert len(await ratings(client)) == len(before) + 4


async def test_an_admission_over_mllp_reaches_the_register() -> None:
    port = _free_port()
    env = {"KWG_MLLP_ENABLED": "true", "KWG_MLLP_PORT": str(port), "KWG_HL7_MENTAL_HEALTH_WARDS": "MHU1"}
    with running_gateway(env=env) as gateway:
        base = gateway.url.removesuffix("/fhir")
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            await setup_entry(client)
            reader, writer = await hl7.mllp.open_hl7_connection("127.0.0.1", port, encoding="utf-8")
            try:
                writer.writeblock(adt("A01"))
                await writer.drain()
                ack = await asyncio.wait_for(reader.readmessage(), timeout=10)
            finally:
                writer.close()
                await writer.wait_closed()
            assert str(ack.segment("MSA")[1]) == "AA"
            deadline = time.monotonic() + 30
            while (await ratings(client))[-1] != "blue":
                assert time.monotonic() < deadline, "the admission did not reach the register"
                await asyncio.sleep(0.25)
            tasks = (await client.get(f"{API}/tasks", params={"person_id": "yp-amira-khan"})).json()["items"]
            assert "post-admission-cetr" in {t["task_type"] for t in tasks}
            log = (await client.get("/admin/hl7/messages")).json()["items"]
            assert [(m["message_type"], m["status"]) for m in log] == [("ADT^A01", "processed")]
            assert isinstance(log[0]["summary"]["structure"], list)  # hl7apy's structure check, kept in the log
            assert json.dumps(log)  # the log is JSON all the way down


async def test_a_blue_rating_from_the_feed_has_provenance(client: httpx.AsyncClient, repo: SqlFhirRepository) -> None:
    await setup_entry(client)
    processor = Hl7Processor(repo, RegisterRules(), SETTINGS)
    await processor(StoredMessage(1, "RX4", "C1", "ADT^A01", NHS, adt("A01", control="ADM-1")))
    n = len(await ratings(client))
    found = (await client.get("/fhir/Provenance", params={"target": f"Observation/dsr-hl7-rating-{n}"})).json()
    [provenance] = [e["resource"] for e in found["entry"]]
    assert provenance["entity"][0]["what"]["identifier"]["value"] == "ADM-1"
    assert provenance["agent"][0]["onBehalfOf"]["identifier"]["value"] == "RX4"
