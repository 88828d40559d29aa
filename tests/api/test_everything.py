"""Patient/$everything: the person and their compartment, paged, narrowed by _type, with access and minimisation."""

from __future__ import annotations

import httpx

from tests.api.test_access_matrix import SCHOOL, STRANGER, act_as, seed
from tests.api.test_domain_api import API, record


async def test_everything_about_a_person(client: httpx.AsyncClient) -> None:
    await seed(client)
    await client.put(f"{API}/register-entries/dsr-amira-2025", json=record("register-entry"))
    await client.put(f"{API}/contacts/contact-amira-0312", json=record("contact"))
    everything = (await client.get("/fhir/Patient/yp-amira-khan/$everything", params={"_count": "100"})).json()
    kinds = [e["resource"]["resourceType"] for e in everything["entry"]]
    assert kinds.count("Patient") == 1 and {
        "Condition",
        "CareTeam",
        "EpisodeOfCare",
        "Encounter",
        "Observation",
    } <= set(kinds)
    assert all(
        "Patient/yp-amira-khan" in str(e["resource"]) or e["resource"]["resourceType"] == "Patient"
        for e in everything["entry"]
    )
    assert everything["total"] == len(kinds)
    first = (await client.get("/fhir/Patient/yp-amira-khan/$everything", params={"_count": "3"})).json()
    assert len(first["entry"]) == 3 and any(link["relation"] == "next" for link in first["link"])
    narrowed = (await client.get("/fhir/Patient/yp-amira-khan/$everything", params={"_type": "Condition"})).json()
    assert {e["resource"]["resourceType"] for e in narrowed["entry"]} == {"Condition"}
    assert (await client.get("/fhir/Patient/nobody/$everything")).status_code == 404
    assert (
        await client.get("/fhir/Patient/yp-amira-khan/$everything", params={"_type": "Spaceship"})
    ).status_code == 400
    act_as(client, STRANGER)
    assert (await client.get("/fhir/Patient/yp-amira-khan/$everything")).status_code == 403


async def test_a_school_gets_only_its_profile(client: httpx.AsyncClient) -> None:
    await seed(client)
    member = {
        "role": "senco-or-teacher",
        "member": {"name": "Ms Dale"},
        "agency": {"ods_code": "190001"},
        "start": "2025-09-01",
    }
    await client.post(f"{API}/care-teams/team-amira/members", json=member)
    act_as(client, SCHOOL)
    everything = (await client.get("/fhir/Patient/yp-amira-khan/$everything")).json()
    assert {e["resource"]["resourceType"] for e in everything["entry"]} <= {"Patient", "CareTeam", "Encounter", "Task"}
