"""The register rules, end to end through the domain API, on SQLite and PostgreSQL: rating decisions, meetings and
case moves raise and close Tasks in the same transaction; the discharge hold refuses (409) and writes nothing; the
overdue sweep flags Tasks so that FHIR search finds them."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx

from gateway.register.sweep import sweep_overdue_tasks
from gateway.store.repository import SqlFhirRepository
from tests.api.test_domain_api import API, KW1, record

AUTHOR = {"name": "Dr Priya Shah", "reference": "Practitioner/priya-shah"}


async def setup_entry(client: httpx.AsyncClient) -> str:
    assert (await client.put(f"{API}/people/yp-amira-khan", json=record("person"))).status_code == 201
    entry = {**record("register-entry"), "ratings": [], "id": "dsr-rules"}
    assert (await client.put(f"{API}/register-entries/dsr-rules", json=entry)).status_code == 201
    return "yp-amira-khan"


async def rate(client: httpx.AsyncClient, rating: str, at: str, review: str) -> httpx.Response:
    change = {"rating": rating, "reason": f"now {rating}", "author": AUTHOR, "at": at, "next_review": review}
    return await client.post(f"{API}/register-entries/dsr-rules/ratings", json=change)


async def tasks(client: httpx.AsyncClient, person: str, **params: str) -> list[dict[str, Any]]:
    response = await client.get(f"{API}/tasks", params={"person_id": person, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def kinds(items: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    return {t["task_type"]: (t["due"], t["status"]) for t in items}


async def test_red_then_blue_raise_the_tasks_the_rules_say(client: httpx.AsyncClient) -> None:
    person = await setup_entry(client)
    assert (await rate(client, "red", "2026-12-01T10:00:00+00:00", "2026-12-08")).status_code == 200
    assert set(kinds(await tasks(client, person))) == {"offer-community-cetr"}
    # Admitted on 23 December with no community C(E)TR: post-admission C(E)TR in 10 working days (Christmas, Boxing
    # Day's substitute and New Year's Day are not working days), a root-cause analysis, the first inpatient C(E)TR.
    assert (await rate(client, "blue", "2026-12-23T15:00:00+00:00", "2027-01-06")).status_code == 200
    found = kinds(await tasks(client, person))
    assert found["post-admission-cetr"] == ("2027-01-11", "requested")
    assert found["root-cause-analysis"][1] == "requested"
    assert found["inpatient-cetr"] == ("2027-03-23", "requested")
    assert found["oversight-visit"] == ("2027-02-03", "requested")  # children: every 6 weeks
    assert found["offer-community-cetr"][1] == "cancelled"  # the admission overtook the offer
    # The Tasks are FHIR Tasks any EHR can search.
    bundle = (await client.get("/fhir/Task", params={"subject": f"Patient/{person}", "status": "requested"})).json()
    assert len(bundle["entry"]) == 4  # with the first oversight visit (out of area by default)


async def test_a_held_community_cetr_completes_the_offer_and_averts_the_post_admission_task(
    client: httpx.AsyncClient,
) -> None:
    person = await setup_entry(client)
    await rate(client, "red", "2026-10-01T10:00:00+00:00", "2026-10-08")
    meeting = {**record("review-meeting"), "id": "cetr-rules", "register_entry_id": "dsr-rules", "case_id": None}
    meeting["start"], meeting["end"] = "2026-10-10T10:00:00+00:00", "2026-10-10T12:00:00+00:00"
    meeting = {k: v for k, v in meeting.items() if v is not None}
    assert (await client.put(f"{API}/reviews/cetr-rules", json=meeting)).status_code == 201
    assert kinds(await tasks(client, person))["offer-community-cetr"][1] == "completed"
    await rate(client, "blue", "2026-11-02T09:00:00+00:00", "2026-11-16")
    found = kinds(await tasks(client, person))
    assert "post-admission-cetr" not in found and "root-cause-analysis" not in found
    assert "inpatient-cetr" in found


async def test_the_discharge_hold_refuses_a_lower_rating_and_writes_nothing(client: httpx.AsyncClient) -> None:
    person = await setup_entry(client)
    await rate(client, "blue", "2026-11-02T09:00:00+00:00", "2026-11-16")
    assert (await rate(client, "red", "2026-11-20T09:00:00+00:00", "2026-11-27")).status_code == 200
    before = await tasks(client, person)
    refused = await rate(client, "green", "2026-11-25T09:00:00+00:00", "2026-12-25")
    assert refused.status_code == 409, refused.text
    assert "stays at least red until 2026-12-04" in refused.json()["issue"][0]["diagnostics"]
    ratings = (await client.get(f"{API}/register-entries/dsr-rules/ratings")).json()["items"]
    assert [r["rating"] for r in ratings] == ["blue", "red"]
    assert await tasks(client, person) == before
    assert (await rate(client, "green", "2026-12-05T09:00:00+00:00", "2027-01-05")).status_code == 200


async def test_an_intensive_cycle_raises_its_12_week_review(client: httpx.AsyncClient) -> None:
    assert (await client.put(f"{API}/people/yp-amira-khan", json=record("person"))).status_code == 201
    case = await client.post(
        f"{API}/cases",
        json={"person_id": "yp-amira-khan", "service_model": "nhs-ld-autism", "referred_on": "2026-09-01"},
    )
    case_id = case.json()["id"]
    await client.post(f"{API}/cases/{case_id}/allocation", json={"keyworkers": [KW1], "on": "2026-09-07"})
    await client.post(f"{API}/cases/{case_id}/intensive", json={"on": "2026-09-14"})
    assert kinds(await tasks(client, "yp-amira-khan"))["keyworking-review"] == ("2026-12-07", "requested")


async def test_the_overdue_sweep_flags_tasks_for_fhir_search(
    client: httpx.AsyncClient, repo: SqlFhirRepository
) -> None:
    person = await setup_entry(client)
    await rate(client, "red", "2026-01-05T10:00:00+00:00", "2026-01-12")
    assert [t["task_type"] for t in await tasks(client, person, overdue="true")] == ["offer-community-cetr"]
    flagged, cleared = await sweep_overdue_tasks(repo, date(2026, 11, 25))
    assert (flagged, cleared) == (1, 0)
    found = (await client.get("/fhir/Task", params={"business-status": "overdue"})).json()
    assert [e["resource"]["code"]["coding"][0]["code"] for e in found["entry"]] == ["offer-community-cetr"]
    assert await sweep_overdue_tasks(repo, date(2026, 11, 25)) == (0, 0)  # running it again changes nothing
