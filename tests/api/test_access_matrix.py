"""The authorisation matrix: clients of several organisations × people × operations, on both databases.

An organisation reads a person's data when it is on their care team, manages their register entry or case, or has a
data sharing agreement (ICB by default); otherwise a read is 403 (audited) and a search leaves the person out.
Break-glass with a reason is allowed for NHS providers only.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest
from fastapi import Request

from gateway.auth import Caller, current_caller
from tests.api.test_domain_api import API, record

JSON = {"Content-Type": "application/fhir+json"}
TRUST = Caller("trust-ehr", "RX4", "DIRECT_CARE", organisation_type="nhs-provider")
COUNCIL = Caller("council-case-system", "LA901", "DIRECT_CARE", organisation_type="local-authority")
SCHOOL = Caller("school-mis", "190001", "DIRECT_CARE", organisation_type="school")
ICB = Caller("icb-register", "QX9", "ADMINISTRATION", organisation_type="icb")
STRANGER = Caller("other-trust", "RZZ", "DIRECT_CARE", organisation_type="nhs-provider")


async def seed(client: httpx.AsyncClient) -> None:
    """Amira (yp-amira-khan) with a care team of the trust RX4 and the council LA901; Bo with nobody."""
    assert (await client.put(f"{API}/people/yp-amira-khan", json=record("person"))).status_code == 201
    bo = {**record("person"), "id": "yp-bo", "nhs_number": "999 000 0018", "upn": None, "la_child_id": None}
    assert (
        await client.put(f"{API}/people/yp-bo", json={k: v for k, v in bo.items() if v is not None})
    ).status_code == 201
    team = {
        "person_id": "yp-amira-khan",
        "members": [
            {
                "role": "keyworker",
                "member": {"name": "Kim Ashworth"},
                "agency": {"ods_code": "RX4"},
                "start": "2025-02-10",
            },
            {
                "role": "social-worker",
                "member": {"name": "Jo Reid"},
                "agency": {"ods_code": "LA901"},
                "start": "2025-02-10",
            },
            {
                "role": "senco-or-teacher",
                "member": {"name": "Ruth Dale"},
                "agency": {"ods_code": "190001"},
                "start": "2025-02-10",
                "end": "2025-07-20",
            },
        ],
    }
    assert (await client.put(f"{API}/care-teams/team-amira", json=team)).status_code == 201


def act_as(client: httpx.AsyncClient, caller: Caller) -> None:
    app: Any = client._transport.app  # type: ignore[attr-defined]

    async def override(request: Request) -> Caller:
        reason = request.headers.get("x-break-glass")
        return replace(caller, break_glass=reason) if reason else caller

    app.dependency_overrides[current_caller] = override
    app.state.access.forget()


@pytest.mark.parametrize(
    ("caller", "amira", "bo"),
    [
        (TRUST, 200, 403),  # on Amira's care team only
        (COUNCIL, 200, 403),
        (SCHOOL, 403, 403),  # the school's membership has ended
        (ICB, 200, 200),  # a data sharing agreement covers the ICB
        (STRANGER, 403, 403),
    ],
)
async def test_reads_need_a_legitimate_relationship(
    client: httpx.AsyncClient, caller: Caller, amira: int, bo: int
) -> None:
    await seed(client)
    act_as(client, caller)
    assert (await client.get("/fhir/Patient/yp-amira-khan")).status_code == amira
    assert (await client.get("/fhir/CareTeam/team-amira")).status_code == amira
    refused = await client.get("/fhir/Patient/yp-bo")
    assert refused.status_code == bo
    if bo == 403:
        assert refused.json()["issue"][0]["code"] == "forbidden"
    # Resources about nobody in particular are not held back.
    assert (await client.get("/fhir/metadata")).status_code == 200


@pytest.mark.parametrize(
    ("caller", "expected"), [(TRUST, ["yp-amira-khan"]), (ICB, ["yp-amira-khan", "yp-bo"]), (STRANGER, [])]
)
async def test_searches_leave_out_people_the_caller_may_not_see(
    client: httpx.AsyncClient, caller: Caller, expected: list[str]
) -> None:
    await seed(client)
    act_as(client, caller)
    bundle = (await client.get("/fhir/Patient", params={"_sort": "_id"})).json()
    assert [e["resource"]["id"] for e in bundle.get("entry", [])] == expected
    if caller is not ICB:
        assert "total" not in bundle or bundle["total"] == len(expected)


async def test_break_glass_is_for_nhs_providers_and_is_flagged(client: httpx.AsyncClient) -> None:
    await seed(client)
    act_as(client, STRANGER)
    headers = {"X-Break-Glass": "A&E attendance, unconscious, no other record"}
    assert (await client.get("/fhir/Patient/yp-bo", headers=headers)).status_code == 200
    act_as(client, COUNCIL)  # a council may not break glass
    assert (await client.get("/fhir/Patient/yp-bo", headers=headers)).status_code == 403


async def test_the_domain_api_applies_the_same_rule(client: httpx.AsyncClient) -> None:
    await seed(client)
    act_as(client, TRUST)
    assert (await client.get(f"{API}/people/yp-amira-khan")).status_code == 200
    assert (await client.get(f"{API}/care-teams", params={"person_id": "yp-amira-khan"})).status_code == 200
    assert (await client.get(f"{API}/people/yp-bo")).status_code == 403
    assert (await client.get(f"{API}/cases", params={"person_id": "yp-bo"})).status_code == 403


async def test_each_organisation_type_reads_only_its_sharing_profile(client: httpx.AsyncClient) -> None:
    await seed(client)
    school_member = {
        "role": "senco-or-teacher",
        "member": {"name": "Ms Dale"},
        "agency": {"ods_code": "190001"},
        "start": "2025-09-01",
    }
    assert (await client.post(f"{API}/care-teams/team-amira/members", json=school_member)).status_code == 200
    conditions = (await client.get("/fhir/Condition", params={"subject": "Patient/yp-amira-khan"})).json()["entry"]
    condition_id = conditions[0]["resource"]["id"]
    act_as(client, SCHOOL)
    patient = (await client.get("/fhir/Patient/yp-amira-khan")).json()
    assert set(patient) <= {"resourceType", "id", "meta", "identifier", "name", "birthDate"}
    assert (await client.get(f"/fhir/Condition/{condition_id}")).status_code == 403  # no clinical detail
    found = (await client.get("/fhir/Condition", params={"subject": "Patient/yp-amira-khan"})).json()
    assert found.get("entry", []) == []
    act_as(client, COUNCIL)
    assert (await client.get(f"/fhir/Condition/{condition_id}")).status_code == 403
    act_as(client, TRUST)
    assert (await client.get(f"/fhir/Condition/{condition_id}")).status_code == 200
    assert "address" in (await client.get("/fhir/Patient/yp-amira-khan")).json()


async def test_a_clients_write_carries_its_provenance(client: httpx.AsyncClient) -> None:
    await seed(client)
    act_as(client, TRUST)
    encounter = {
        "resourceType": "Encounter",
        "id": "visit-by-trust",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": "Patient/yp-amira-khan"},
    }
    assert (await client.put("/fhir/Encounter/visit-by-trust", json=encounter, headers=JSON)).status_code == 201
    found = (await client.get("/fhir/Provenance", params={"target": "Encounter/visit-by-trust"})).json()
    [provenance] = [e["resource"] for e in found["entry"]]
    assert provenance["agent"][0]["who"]["identifier"]["value"] == "trust-ehr"
    assert provenance["agent"][0]["onBehalfOf"]["identifier"]["value"] == "RX4"
    assert provenance["target"][0]["reference"] == "Encounter/visit-by-trust/_history/1"
