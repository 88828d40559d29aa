"""The authorisation matrix: clients of several organisations × people × operations, on both databases.

An organisation reads a person's data when it is on their care team, manages their register entry or case, or has a
data sharing agreement (ICB by default); otherwise a read is 403 (audited) and a search leaves the person out.
Break-glass with a reason is allowed for NHS providers only. The same rules hold for histories, a Bundle's GET
entries and the domain API (whose answers are reduced to the sharing profile field by field), and writes need the
relationship a read needs: every write path × every organisation.
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


# -- histories, Bundles and the domain API meet the same rules ---------------------------------------------------

SCHOOL_PATIENT = {"resourceType", "id", "meta", "identifier", "name", "birthDate"}
SCHOOL_MEMBER = {
    "role": "senco-or-teacher",
    "member": {"name": "Ms Dale"},
    "agency": {"ods_code": "190001"},
    "start": "2025-09-01",
}


async def seed_with_school(client: httpx.AsyncClient) -> None:
    """The seed, with the school back on Amira's care team (a current membership)."""
    await seed(client)
    assert (await client.post(f"{API}/care-teams/team-amira/members", json=SCHOOL_MEMBER)).status_code == 200


def history_ids(bundle: dict[str, Any]) -> list[str]:
    """``Type/id`` of each entry of a history Bundle (a deletion has no resource, only its fullUrl)."""
    return ["/".join(e["fullUrl"].split("/")[-2:]) for e in bundle.get("entry", [])]


async def test_histories_apply_the_read_rules(client: httpx.AsyncClient) -> None:
    await seed_with_school(client)
    assert (await client.delete("/fhir/Condition/yp-bo-ld")).status_code == 204  # a deletion: judged by what it was
    act_as(client, SCHOOL)
    # The school reads no Condition, by history no more than by read or search (it did, before).
    conditions = (await client.get("/fhir/Condition/_history")).json()
    assert conditions.get("entry", []) == []
    assert "total" not in conditions  # the count of what it may not see is not given either
    assert (await client.get("/fhir/Condition/yp-amira-khan-ld/_history")).status_code == 403
    # Patients: Amira only, reduced to the school's profile.
    patients = (await client.get("/fhir/Patient/_history")).json()["entry"]
    assert {e["resource"]["id"] for e in patients} == {"yp-amira-khan"}
    assert all(set(e["resource"]) <= SCHOOL_PATIENT for e in patients)
    everything = (await client.get("/fhir/_history", params={"_count": "100"})).json()["entry"]
    assert {e["resource"]["resourceType"] for e in everything} <= {"Patient", "CareTeam", "Encounter", "Task"}
    assert not any("yp-bo" in e["fullUrl"] for e in everything)
    act_as(client, TRUST)
    assert (await client.get("/fhir/Patient/yp-bo/_history")).status_code == 403  # as the read would be
    assert (await client.get("/fhir/Patient/yp-amira-khan/_history")).status_code == 200
    trust = (await client.get("/fhir/Condition/_history")).json()
    assert sorted(history_ids(trust)) == ["Condition/yp-amira-khan-autism", "Condition/yp-amira-khan-ld"]
    assert "address" in (await client.get("/fhir/Patient/yp-amira-khan/_history")).json()["entry"][0]["resource"]
    act_as(client, ICB)  # a data sharing agreement: every version, the deletion of Bo's Condition too
    icb = (await client.get("/fhir/Condition/_history")).json()
    assert icb["total"] == 5 and history_ids(icb).count("Condition/yp-bo-ld") == 2


async def test_bundle_get_entries_apply_the_read_rules(client: httpx.AsyncClient) -> None:
    await seed_with_school(client)
    act_as(client, SCHOOL)
    gets = [
        "Condition/yp-amira-khan-ld",
        "Patient/yp-amira-khan",
        "Patient/yp-bo",
        "Condition?subject=Patient/yp-amira-khan",
    ]
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": url}} for url in [*gets, "Patient?_sort=_id"]],
    }
    entries = (await client.post("/fhir", json=batch, headers=JSON)).json()["entry"]
    statuses = [e["response"]["status"] for e in entries]
    assert statuses == ["403 Forbidden", "200 OK", "403 Forbidden", "200 OK", "200 OK"]
    assert entries[0]["response"]["outcome"]["issue"][0]["code"] == "forbidden"
    assert "resource" not in entries[0]
    assert set(entries[1]["resource"]) <= SCHOOL_PATIENT
    assert entries[3]["resource"].get("entry", []) == []
    assert [x["resource"]["id"] for x in entries[4]["resource"]["entry"]] == ["yp-amira-khan"]
    # In a transaction a refused read refuses everything, and what it wrote is not kept.
    both = transaction(
        {
            "resource": encounter("visit-in-tx", "yp-amira-khan"),
            "request": {"method": "PUT", "url": "Encounter/visit-in-tx"},
        },
        {"request": {"method": "GET", "url": "Condition/yp-amira-khan-ld"}},
    )
    refused = await client.post("/fhir", json=both, headers=JSON)
    assert refused.status_code == 403
    act_as(client, TRUST)
    assert (await client.get("/fhir/Encounter/visit-in-tx")).status_code == 404


async def test_the_domain_api_answers_with_the_sharing_profile(client: httpx.AsyncClient) -> None:
    await seed_with_school(client)
    entry = record("register-entry", id="dsr-amira")
    assert (await client.put(f"{API}/register-entries/dsr-amira", json=entry)).status_code == 201
    act_as(client, TRUST)  # an NHS provider: the whole record
    full = (await client.get(f"{API}/people/yp-amira-khan")).json()
    assert {"nhs_number", "postcode", "diagnoses", "sex", "gp_practice"} <= set(full)
    assert (await client.get(f"{API}/register-entries/dsr-amira")).json()["ratings"]
    act_as(client, SCHOOL)  # on the care team too, but a school: identifiers, name and birth date only
    person = (await client.get(f"{API}/people/yp-amira-khan")).json()
    assert person["name"] == full["name"] and person["birth_date"] == full["birth_date"]
    assert not {"postcode", "diagnoses", "sex", "gp_practice", "looked_after"} & set(person)
    found = (await client.get(f"{API}/people", params={"nhs_number": "999 001 1133"})).json()["items"]
    assert [set(p) for p in found] == [set(person)]
    assert (await client.get(f"{API}/care-teams/team-amira")).status_code == 200  # care teams are in its profile
    # A register entry is no record a school receives: 403 to read, absent from lists, its ratings too.
    assert (await client.get(f"{API}/register-entries/dsr-amira")).status_code == 403
    listed = await client.get(f"{API}/register-entries", params={"person_id": "yp-amira-khan"})
    assert listed.status_code == 200 and listed.json() == {"items": [], "total": 0}
    assert (await client.get(f"{API}/register-entries/dsr-amira/ratings")).status_code == 403
    referral = await client.post(f"{API}/register-entries", json={k: v for k, v in entry.items() if k != "id"})
    assert referral.status_code == 201 and set(referral.json()) == {"id"}  # what it wrote, it still may not read
    act_as(client, STRANGER)  # no relationship: the person search leaves Amira out; her Tasks are refused
    assert (await client.get(f"{API}/people", params={"nhs_number": "999 001 1133"})).json()["items"] == []
    assert (await client.get(f"{API}/tasks", params={"person_id": "yp-amira-khan"})).status_code == 403
    assert (await client.get(f"{API}/register-entries/dsr-amira/ratings")).status_code == 403


# -- writes need the relationship a read needs ------------------------------------------------------------------


def encounter(eid: str, person: str) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{person}"},
    }


def transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


NEW_PERSON = {"resourceType": "Patient", "name": [{"family": "New"}], "birthDate": "2012-01-01", "gender": "male"}
CONTACT = {k: v for k, v in record("contact").items() if k not in ("id", "case_id")}
TEAM = {
    "person_id": "yp-amira-khan",
    "members": [{"role": "keyworker", "member": {"name": "Kim"}, "agency": {"ods_code": "RX4"}, "start": "2025-02-10"}],
}

#: A write → (method, path, body, the person it is about: amira, bo or a new one, the status when allowed).
WRITES: dict[str, tuple[str, str, dict[str, Any] | None, str, int]] = {
    "create about Amira": ("PUT", "/fhir/Encounter/e1", encounter("e1", "yp-amira-khan"), "amira", 201),
    "create about Bo": ("POST", "/fhir/Encounter", encounter("e1", "yp-bo"), "bo", 201),
    "update Amira": (
        "PUT",
        "/fhir/Patient/yp-amira-khan",
        {"resourceType": "Patient", "id": "yp-amira-khan", "birthDate": "2011-05-04"},
        "amira",
        200,
    ),
    "move Amira's care team to Bo": (
        "PUT",
        "/fhir/CareTeam/team-amira",
        {"resourceType": "CareTeam", "id": "team-amira", "subject": {"reference": "Patient/yp-bo"}},
        "bo",
        200,
    ),
    "conditional update about Amira": (
        "PUT",
        "/fhir/Encounter?_id=e2",
        encounter("e2", "yp-amira-khan"),
        "amira",
        201,
    ),
    "delete Amira's Condition": ("DELETE", "/fhir/Condition/yp-amira-khan-ld", None, "amira", 204),
    "conditional delete of Bo's Conditions": ("DELETE", "/fhir/Condition?subject=Patient/yp-bo", None, "bo", 200),
    "transaction about Amira": (
        "POST",
        "/fhir",
        transaction(
            {"resource": encounter("e3", "yp-amira-khan"), "request": {"method": "PUT", "url": "Encounter/e3"}}
        ),
        "amira",
        200,
    ),
    "create a new Patient": ("POST", "/fhir/Patient", NEW_PERSON, "new", 201),
    "transaction creating a person and their visit": (
        "POST",
        "/fhir",
        transaction(
            {
                "fullUrl": "urn:uuid:0c4a8a52-3f52-4b33-9f5e-1d7a2b7f0001",
                "resource": NEW_PERSON,
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    **encounter("e4", "x"),
                    "subject": {"reference": "urn:uuid:0c4a8a52-3f52-4b33-9f5e-1d7a2b7f0001"},
                },
                "request": {"method": "PUT", "url": "Encounter/e4"},
            },
        ),
        "new",
        200,
    ),
    "domain: replace Amira's care team": ("PUT", f"{API}/care-teams/team-amira", TEAM, "amira", 200),
    "domain: record a contact with Amira": ("POST", f"{API}/contacts", CONTACT, "amira", 201),
    "domain: a new person": (
        "POST",
        f"{API}/people",
        {k: v for k, v in record("person").items() if k != "id"},
        "new",
        201,
    ),
    "domain: refer Bo to the register": (
        "POST",
        f"{API}/register-entries",
        {k: v for k, v in record("register-entry", person_id="yp-bo").items() if k != "id"},
        "new",  # a new register entry needs no relationship: it is how one starts
        201,
    ),
    "domain: end a member of Amira's care team": (
        "POST",
        f"{API}/care-teams/team-amira/members/0/end",
        {"on": "2025-12-01"},
        "amira",
        200,
    ),
}
#: Who may write about whom: the same as who may read (the school's membership has ended).
MAY_WRITE = {
    "trust": {"amira", "new"},
    "council": {"amira", "new"},
    "school": {"new"},
    "icb": {"amira", "bo", "new"},
    "stranger": {"new"},
}
CALLERS = {"trust": TRUST, "council": COUNCIL, "school": SCHOOL, "icb": ICB, "stranger": STRANGER}


@pytest.mark.parametrize("who", sorted(CALLERS))
@pytest.mark.parametrize("write", sorted(WRITES))
async def test_writes_need_a_legitimate_relationship(client: httpx.AsyncClient, who: str, write: str) -> None:
    await seed(client)
    method, path, body, about, allowed = WRITES[write]
    headers = JSON if path.startswith("/fhir") else {}
    before = (await client.get("/fhir/_history", params={"_count": "0"})).json()["total"]
    act_as(client, CALLERS[who])
    answer = await client.request(method, path, json=body, headers=headers)
    if about in MAY_WRITE[who]:
        assert answer.status_code == allowed, answer.text
    else:
        assert answer.status_code == 403, answer.text
        assert answer.json()["issue"][0]["code"] == "forbidden"
        client._transport.app.dependency_overrides.clear()  # type: ignore[attr-defined]
        assert (await client.get("/fhir/_history", params={"_count": "0"})).json()["total"] == before  # nothing


async def test_break_glass_does_not_open_writes(client: httpx.AsyncClient) -> None:
    await seed(client)
    act_as(client, STRANGER)
    headers = {**JSON, "X-Break-Glass": "A&E attendance"}
    assert (await client.get("/fhir/Patient/yp-bo", headers=headers)).status_code == 200
    assert (await client.put("/fhir/Encounter/e9", json=encounter("e9", "yp-bo"), headers=headers)).status_code == 403


async def test_a_batch_refuses_the_entries_the_caller_may_not_write(client: httpx.AsyncClient) -> None:
    await seed(client)
    act_as(client, TRUST)
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": encounter("b1", "yp-amira-khan"), "request": {"method": "PUT", "url": "Encounter/b1"}},
            {"resource": encounter("b2", "yp-bo"), "request": {"method": "PUT", "url": "Encounter/b2"}},
            {"request": {"method": "DELETE", "url": "Condition?subject=Patient/yp-bo"}},
        ],
    }
    entries = (await client.post("/fhir", json=batch, headers=JSON)).json()["entry"]
    assert [e["response"]["status"] for e in entries] == ["201 Created", "403 Forbidden", "403 Forbidden"]
    act_as(client, ICB)
    assert (await client.get("/fhir/Encounter/b2")).status_code == 404
    assert len((await client.get("/fhir/Condition", params={"subject": "Patient/yp-bo"})).json()["entry"]) == 2
