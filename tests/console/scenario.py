"""The data the console tests look at, written through the public API (domain API, FHIR REST) and the HL7 v2
feed, so the pages show what real callers would have stored.

- Amira (the sample person, LA 383): rated amber then red in 2025, a community C(E)TR in February 2025 with two
  recommendations still open (overdue), no keyworking case; then an A01 over MLLP to a mental-health ward makes
  her blue (an admission) and raises the post-admission C(E)TR.
- Bo (LA 901): rated red, with a keyworker on an intensive keyworking case since January 2026 (its 12-week review
  is overdue), and one home visit.
- ``Patient/poison``: refused by the destination, so its delivery is a dead letter.
"""

from __future__ import annotations

import asyncio
from typing import Any

import hl7.mllp
import httpx

from tests.api.test_domain_api import API, KW1, record

NHS = "9990011133"  # Amira's NHS number (tests/mappings/records/person.json)
AMIRA, BO, POISON = "yp-amira-khan", "yp-bo-lund", "poison"
KEYWORKER = {"name": "Kim Ashworth", "reference": "Practitioner/kim-ashworth"}
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def admission() -> bytes:
    when = "20260710143000"
    segments = [
        f"MSH|^~\\&|PAS|RX4|KWG|KWG|{when}||ADT^A01^ADT_A01|ADM{when}|P|2.4",
        f"EVN|A01|{when}",
        f"PID|1||{NHS}^^^NHS^NH||KHAN^AMIRA||20110504|F",
        f"PV1|1|I|MHU1^BAY2^BED4^RX4||||||||||||||||V{when}||||||||||||||||||||||||||{when}",
    ]
    return "\r".join(segments).encode()


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), f"{response.request.method} {response.request.url}: {response.text}"
    body: dict[str, Any] = response.json()
    return body


def load_people(client: httpx.Client) -> None:
    _ok(client.put(f"{API}/people/{AMIRA}", json=record("person")))
    _ok(client.put(f"{API}/register-entries/dsr-amira-2025", json=record("register-entry")))
    meeting = {k: v for k, v in record("review-meeting", case_id=None).items() if v is not None}
    _ok(client.put(f"{API}/reviews/{meeting['id']}", json=meeting))

    bo = {
        "id": BO,
        "la_child_id": {"la_number": "901", "value": "C000777"},
        "name": {"given": ["Bo"], "family": "Lund"},
        "birth_date": "2012-03-01",
        "sex": "male",
    }
    _ok(client.put(f"{API}/people/{BO}", json=bo))
    entry = {
        **record("register-entry"),
        "id": "dsr-bo-2026",
        "person_id": BO,
        "referred_on": "2025-12-01",
        "consent": {**record("register-entry")["consent"], "decided_at": "2025-12-02T10:00:00+00:00"},
        "ratings": [
            {
                "rating": "red",
                "reason": "Placement at risk.",
                "author": {"name": "Dr Priya Shah", "reference": "Practitioner/priya-shah"},
                "at": "2025-12-10T10:00:00+00:00",
                "next_review": "2025-12-17",
            }
        ],
    }
    _ok(client.put(f"{API}/register-entries/dsr-bo-2026", json=entry))
    case = _ok(
        client.post(
            f"{API}/cases", json={"person_id": BO, "service_model": "nhs-ld-autism", "referred_on": "2025-12-01"}
        )
    )
    _ok(client.post(f"{API}/cases/{case['id']}/allocation", json={"keyworkers": [KW1], "on": "2025-12-15"}))
    _ok(client.post(f"{API}/cases/{case['id']}/intensive", json={"on": "2026-01-05"}))
    contact = {
        **record("contact"),
        "id": "contact-bo-1",
        "person_id": BO,
        "case_id": case["id"],
        "start": "2026-01-20T16:00:00+00:00",
        "end": "2026-01-20T17:00:00+00:00",
    }
    _ok(client.put(f"{API}/contacts/contact-bo-1", json={k: v for k, v in contact.items() if k != "views"}))
    poison = {"resourceType": "Patient", "id": POISON, "gender": "unknown"}
    _ok(client.put(f"/fhir/Patient/{POISON}", json=poison, headers=FHIR_JSON))


async def send_admission(port: int) -> str:
    reader, writer = await hl7.mllp.open_hl7_connection("127.0.0.1", port, encoding="utf-8")
    try:
        writer.writeblock(admission())
        await writer.drain()
        ack = await asyncio.wait_for(reader.readmessage(), timeout=10)
    finally:
        writer.close()
        await writer.wait_closed()
    return str(ack.segment("MSA")[1])
