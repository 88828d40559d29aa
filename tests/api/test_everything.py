"""Patient/$everything: the person and their compartment, paged, narrowed by _type, with access and minimisation."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from gateway.api.everything import CARE_DATE, compartment_param
from gateway.store.repository import SqlFhirRepository
from gateway.store.searchparams import DATE, parameter
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


PERSON = "yp-amira-khan"
EVERYTHING = f"/fhir/Patient/{PERSON}/$everything"
JSON = {"Content-Type": "application/fhir+json"}


async def observation(client: httpx.AsyncClient, obs_id: str, effective: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "code": {"text": "a note"},
        "subject": {"reference": f"Patient/{PERSON}"},
    }
    if effective is not None:
        body["effectiveDateTime"] = effective
    response = await client.put(f"/fhir/Observation/{obs_id}", json=body, headers=JSON)
    assert response.status_code == 201, response.text
    stored: dict[str, Any] = response.json()
    return stored


def link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((entry["url"] for entry in bundle["link"] if entry["relation"] == relation), None)


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def ids(bundle: dict[str, Any]) -> list[str]:
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])]


async def walk(client: httpx.AsyncClient, url: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """Every page from the first, following the next links."""
    pages = [(await client.get(url, params=params)).json()]
    while (following := link(pages[-1], "next")) is not None:
        assert len(pages) < 50
        pages.append((await client.get(following)).json())
    return pages


async def test_paging_links_keep_since_type_and_count(client: httpx.AsyncClient) -> None:
    await seed(client)
    old = await observation(client, "obs-old")
    for n in range(5):
        await observation(client, f"obs-new-{n}")
    since = old["meta"]["lastUpdated"]
    params = {"_since": since, "_type": "Patient,Observation", "_count": "2"}
    first = (await client.get(EVERYTHING, params=params)).json()
    assert first["total"] == 6  # the Patient and the five changed after obs-old
    following = link(first, "next")
    assert following is not None and urlsplit(following).path == f"/fhir/Patient/{PERSON}/$everything"
    assert query(following) == {
        "_type": ["Patient,Observation"],
        "_since": [since],
        "_count": ["2"],
        "_offset": ["2"],
    }
    assert query(link(first, "self") or "")["_since"] == [since]
    pages = await walk(client, EVERYTHING, params)
    assert [len(p["entry"]) for p in pages] == [2, 2, 2] and {p["total"] for p in pages} == {6}
    seen = [i for p in pages for i in ids(p)]
    assert seen == [f"Patient/{PERSON}", *(f"Observation/obs-new-{n}" for n in range(5))]
    previous = link(pages[-1], "previous")
    assert previous is not None and query(previous)["_since"] == [since] and query(previous)["_offset"] == ["2"]
    assert ids((await client.get(previous)).json()) == ids(pages[1])


async def test_start_and_end_narrow_care_dates(client: httpx.AsyncClient) -> None:
    await seed(client)  # the care team's period starts 2025-02-10 and has no end
    await observation(client, "obs-2024", "2024-03-01T10:00:00Z")
    await observation(client, "obs-2025-spring", "2025-04-01T10:00:00Z")
    await observation(client, "obs-2025-autumn", "2025-10-01T10:00:00Z")
    await observation(client, "obs-undated")
    params = {"_type": "Patient,Observation,CareTeam", "start": "2025-01-01", "end": "2025-06-30"}
    bundle = (await client.get(EVERYTHING, params=params)).json()
    assert set(ids(bundle)) == {
        f"Patient/{PERSON}",
        "CareTeam/team-amira",
        "Observation/obs-2025-spring",
        "Observation/obs-undated",  # no care date: a range cannot place it outside
    }
    assert bundle["total"] == 4
    only_start = (await client.get(EVERYTHING, params={"_type": "Observation", "start": "2025-05"})).json()
    assert set(ids(only_start)) == {"Observation/obs-2025-autumn", "Observation/obs-undated"}
    only_end = (await client.get(EVERYTHING, params={"_type": "Observation", "end": "2024"})).json()
    assert set(ids(only_end)) == {"Observation/obs-2024", "Observation/obs-undated"}
    assert query(link(only_end, "self") or "")["end"] == ["2024"]
    bad = await client.get(EVERYTHING, params={"start": "last tuesday"})
    assert bad.status_code == 400 and "start" in bad.text


def test_care_dates_are_date_parameters() -> None:
    for res_type, name in CARE_DATE.items():
        found = parameter(res_type, name)
        assert found is not None and found.type == DATE, (res_type, name)
        assert compartment_param(res_type) is not None, res_type


async def test_total_counts_past_the_stores_largest_page(client: httpx.AsyncClient, repo: SqlFhirRepository) -> None:
    await seed(client)
    for n in range(7):
        await observation(client, f"obs-{n}")
    repo.max_count = 3  # the store answers at most three a search: $everything must read on, not stop there
    bundle = (await client.get(EVERYTHING, params={"_type": "Observation", "_count": "100"})).json()
    assert bundle["total"] == 7 and len(bundle["entry"]) == 7 and link(bundle, "next") is None
    pages = await walk(client, EVERYTHING, {"_type": "Patient,Observation", "_count": "3"})
    assert [len(p["entry"]) for p in pages] == [3, 3, 2] and {p["total"] for p in pages} == {8}
    assert sorted(i for p in pages for i in ids(p)) == sorted(
        [f"Patient/{PERSON}", *(f"Observation/obs-{n}" for n in range(7))]
    )


async def test_withheld_sensitive_resources_are_not_counted(client: httpx.AsyncClient, repo: SqlFhirRepository) -> None:
    await seed(client)
    member = {
        "role": "senco-or-teacher",
        "member": {"name": "Ms Dale"},
        "agency": {"ods_code": "190001"},
        "start": "2025-09-01",
    }
    assert (await client.post(f"{API}/care-teams/team-amira/members", json=member)).status_code < 300
    for n in range(6):
        body: dict[str, Any] = {
            "resourceType": "Encounter",
            "id": f"enc-{n}",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{PERSON}"},
        }
        if n % 2:
            body["meta"] = {
                "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]
            }
        assert (await client.put(f"/fhir/Encounter/enc-{n}", json=body, headers=JSON)).status_code == 201
    repo.max_count = 2
    act_as(client, SCHOOL)
    pages = await walk(client, EVERYTHING, {"_type": "Encounter", "_count": "2"})
    assert {p["total"] for p in pages} == {3}
    assert [i for p in pages for i in ids(p)] == ["Encounter/enc-0", "Encounter/enc-2", "Encounter/enc-4"]
