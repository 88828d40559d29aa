"""The domain API at /api/v1 end to end over HTTP, on SQLite and PostgreSQL (the ``client`` fixture rolls back).

Each record kind is created, read back (from FHIR: the only copy), replaced and listed; lifecycle moves work and
impossible ones answer 409 naming the field; bad records answer 422 naming the field; neither writes anything.
Idempotency-Key replays the first answer and refuses a different request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

RECORDS = Path(__file__).parent.parent / "mappings" / "records"
API = "/api/v1"
KW1 = {"name": "Kim Ashworth", "reference": "Practitioner/kim-ashworth"}
KW2 = {"name": "Lee Okafor", "reference": "Practitioner/lee-okafor"}
KW3 = {"name": "Ash Hussain", "reference": "Practitioner/ash-hussain"}


def record(kind: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDS / f"{kind}.json").read_text())
    data.update(changes)
    return data


def without_id(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "id"}


async def fhir_count(client: httpx.AsyncClient, res_type: str, **params: str) -> int:
    bundle = (await client.get(f"/fhir/{res_type}", params={**params, "_summary": "count"})).json()
    return int(bundle["total"])


async def store_size(client: httpx.AsyncClient) -> int:
    types = ("Patient", "Condition", "EpisodeOfCare", "Flag", "Observation", "Consent", "CareTeam", "Encounter")
    return sum([await fhir_count(client, t) for t in (*types, "Composition", "Task")])


@pytest.fixture
async def person_id(client: httpx.AsyncClient) -> str:
    response = await client.put(f"{API}/people/yp-amira-khan", json=record("person"))
    assert response.status_code == 201, response.text
    return "yp-amira-khan"


def issues(response: httpx.Response) -> list[tuple[str, str]]:
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    return [(i["diagnostics"], (i.get("expression") or [""])[0]) for i in outcome["issue"]]


def fields(response: httpx.Response) -> set[str]:
    return {field for _, field in issues(response)}


# -- people ---------------------------------------------------------------------------------------------------------


async def test_a_person_is_created_read_found_and_replaced(client: httpx.AsyncClient) -> None:
    created = await client.post(f"{API}/people", json=without_id(record("person")))
    assert created.status_code == 201, created.text
    person = created.json()
    pid = person["id"]
    assert created.headers["location"] == f"{API}/people/{pid}"
    assert person["nhs_number"] == "9990011133" and person["postcode"] == "LS6 2AB"
    read = await client.get(f"{API}/people/{pid}")
    assert read.status_code == 200 and read.json() == person
    assert read.headers["etag"] == 'W/"1"'
    # The FHIR side holds it: a UK Core Patient and two Conditions.
    assert (await client.get(f"/fhir/Patient/{pid}")).json()["identifier"][0]["value"] == "9990011133"
    assert await fhir_count(client, "Condition", subject=f"Patient/{pid}") == 2
    found = (await client.get(f"{API}/people", params={"nhs_number": "999 001 1133"})).json()
    assert [p["id"] for p in found["items"]] == [pid]
    # Replace: one diagnosis less; the dropped Condition is gone from the store too.
    changed = {**person, "diagnoses": person["diagnoses"][:1]}
    replaced = await client.put(f"{API}/people/{pid}", json=changed, headers={"If-Match": 'W/"1"'})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["diagnoses"] == person["diagnoses"][:1]
    assert await fhir_count(client, "Condition", subject=f"Patient/{pid}") == 1
    stale = await client.put(f"{API}/people/{pid}", json=changed, headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"nhs_number": "999 001 1134"}, "nhs_number"),
        ({"sex": "mostly"}, "sex"),
        ({"birth_date": "1990-01-01"}, "birth_date"),
        ({"diagnoses": [{"diagnosis": "flu"}]}, "diagnoses[0].diagnosis"),
        ({"postcode": "not a postcode"}, "postcode"),
        ({"favourite_colour": "blue"}, "favourite_colour"),
    ],
)
async def test_a_bad_person_is_refused_naming_the_field(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    before = await store_size(client)
    response = await client.post(f"{API}/people", json=without_id(record("person", **change)))
    assert response.status_code == 422, response.text
    assert field in fields(response)
    assert await store_size(client) == before


async def test_unknown_records_are_404_and_other_kinds_do_not_leak(client: httpx.AsyncClient, person_id: str) -> None:
    assert (await client.get(f"{API}/people/nobody")).status_code == 404
    await client.put(f"{API}/care-teams/team-amira", json=record("care-team"))
    # A care team id is not a case id, and an EpisodeOfCare of the wrong kind is not a case.
    assert (await client.get(f"{API}/cases/team-amira")).status_code == 404
    await client.put(f"{API}/register-entries/dsr-amira-2025", json=record("register-entry"))
    assert (await client.get(f"{API}/cases/dsr-amira-2025")).status_code == 404
    clash = await client.put(f"{API}/cases/dsr-amira-2025", json=record("keyworking-case", id="dsr-amira-2025"))
    assert clash.status_code == 409


async def test_records_need_a_known_person(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{API}/register-entries", json=without_id(record("register-entry")))
    assert response.status_code == 422
    assert fields(response) == {"person_id"}


# -- every kind round trips through the API -------------------------------------------------------------------------

KINDS = {
    "register-entry": "register-entries",
    "keyworking-case": "cases",
    "care-team": "care-teams",
    "contact": "contacts",
    "review-meeting": "reviews",
}


@pytest.mark.parametrize("kind", KINDS)
async def test_each_kind_is_put_read_and_listed(client: httpx.AsyncClient, person_id: str, kind: str) -> None:
    data = record(kind)
    collection = KINDS[kind]
    first = await client.put(f"{API}/{collection}/{data['id']}", json=data)
    assert first.status_code == 201, first.text
    again = await client.put(f"{API}/{collection}/{data['id']}", json=data)
    assert again.status_code == 200
    assert again.json() == first.json()
    read = await client.get(f"{API}/{collection}/{data['id']}")
    assert read.status_code == 200
    assert read.json() == first.json()
    listed = (await client.get(f"{API}/{collection}", params={"person_id": person_id})).json()
    assert [item["id"] for item in listed["items"]] == [data["id"]]


async def test_contacts_and_meetings_are_kept_apart(client: httpx.AsyncClient, person_id: str) -> None:
    await client.put(f"{API}/contacts/contact-amira-0312", json=record("contact"))
    await client.put(f"{API}/reviews/cetr-amira-2025-02", json=record("review-meeting"))
    contacts = (await client.get(f"{API}/contacts", params={"person_id": person_id})).json()["items"]
    reviews = (await client.get(f"{API}/reviews", params={"person_id": person_id})).json()["items"]
    assert [c["id"] for c in contacts] == ["contact-amira-0312"]
    assert [r["id"] for r in reviews] == ["cetr-amira-2025-02"]


async def test_dropping_the_views_deletes_their_observation(client: httpx.AsyncClient, person_id: str) -> None:
    data = record("contact")
    await client.put(f"{API}/contacts/{data['id']}", json=data)
    assert (await client.get(f"/fhir/Observation/{data['id']}-views")).status_code == 200
    response = await client.put(f"{API}/contacts/{data['id']}", json=without_views(data))
    assert response.status_code == 200 and "views" not in response.json()
    assert (await client.get(f"/fhir/Observation/{data['id']}-views")).status_code == 410


def without_views(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "views"}


# -- the register -----------------------------------------------------------------------------------------------------


async def test_ratings_accumulate_and_the_flag_follows(client: httpx.AsyncClient, person_id: str) -> None:
    entry = record("register-entry")
    await client.put(f"{API}/register-entries/{entry['id']}", json=entry)
    change = {
        "rating": "red",
        "reason": "Placement breakdown imminent.",
        "author": {"name": "Dr Priya Shah", "reference": "Practitioner/priya-shah"},
        "at": "2025-06-02T09:00:00+01:00",
        "next_review": "2025-06-09",
    }
    response = await client.post(f"{API}/register-entries/{entry['id']}/ratings", json=change)
    assert response.status_code == 200, response.text
    history = (await client.get(f"{API}/register-entries/{entry['id']}/ratings")).json()["items"]
    assert [h["rating"] for h in history] == [r["rating"] for r in entry["ratings"]] + ["red"]
    flag = (await client.get(f"/fhir/Flag/{entry['id']}-rating")).json()
    assert "red" in json.dumps(flag["code"])
    # Going back in time is a bad request naming the field; nothing changes.
    earlier = {**change, "at": "2025-01-20T09:00:00+00:00", "next_review": "2025-02-01"}
    refused = await client.post(f"{API}/register-entries/{entry['id']}/ratings", json=earlier)
    assert refused.status_code == 422 and fields(refused) == {"at"}
    assert len((await client.get(f"{API}/register-entries/{entry['id']}/ratings")).json()["items"]) == len(history)


async def test_register_status_moves_and_refusals(client: httpx.AsyncClient, person_id: str) -> None:
    entry = {**record("register-entry"), "status": "referral", "ratings": [], "id": "dsr-new"}
    assert (await client.put(f"{API}/register-entries/dsr-new", json=entry)).status_code == 201
    moved = await client.post(
        f"{API}/register-entries/dsr-new/status", json={"status": "screening", "on": "2025-01-08"}
    )
    assert moved.status_code == 200 and moved.json()["status"] == "screening"
    refused = await client.post(f"{API}/register-entries/dsr-new/status", json={"status": "closed", "on": "2025-01-09"})
    assert refused.status_code == 409
    assert fields(refused) == {"status"}
    assert "screening" in issues(refused)[0][0]
    declined = await client.post(
        f"{API}/register-entries/dsr-new/status", json={"status": "declined", "on": "2025-01-10"}
    )
    assert declined.json()["ended_on"] == "2025-01-10"


# -- keyworking cases -------------------------------------------------------------------------------------------------


async def refer(client: httpx.AsyncClient, person_id: str, model: str = "nhs-ld-autism") -> str:
    response = await client.post(
        f"{API}/cases", json={"person_id": person_id, "service_model": model, "referred_on": "2025-02-03"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["history"] == [{"phase": "referred", "start": "2025-02-03"}]
    return str(response.json()["id"])


async def test_a_case_goes_through_its_lifecycle(client: httpx.AsyncClient, person_id: str) -> None:
    case_id = await refer(client, person_id)

    async def move(action: str, **body: Any) -> dict[str, Any]:
        response = await client.post(f"{API}/cases/{case_id}/{action}", json=body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    await move("allocation", keyworkers=[KW1], on="2025-02-10")
    await move("intensive", on="2025-02-17")
    case = await move("review", decision="continue", on="2025-05-12")
    assert [p.get("cycle") for p in case["history"] if p["phase"] == "intensive"] == [1, 2]
    await move("review", decision="step-down", on="2025-08-04")
    await move("monitoring", on="2025-09-01")
    case = await move("re-escalation", on="2025-10-06")
    assert case["history"][-1] == {"phase": "intensive", "start": "2025-10-06", "cycle": 3}
    case = await move("closure", reason="goals-met", on="2026-01-05")
    assert case["closure_reason"] == "goals-met"
    stored = (await client.get(f"/fhir/EpisodeOfCare/{case_id}")).json()
    assert stored["status"] == "finished" and stored["period"]["end"] == "2026-01-05"
    assert (await client.get(f"{API}/cases/{case_id}")).json() == case


@pytest.mark.parametrize(
    ("setup", "action", "body", "field", "words"),
    [
        ([], "step-down", {"on": "2025-03-01"}, "phase", "allocate"),
        ([], "keyworkers", {"keyworker": KW1}, "keyworkers", "allocate instead"),
        (
            [("allocation", {"keyworkers": [KW1, KW2], "on": "2025-02-10"})],
            "keyworkers",
            {"keyworker": KW3},
            "keyworkers",
            "at most 2",
        ),
        (
            [("closure", {"reason": "declined", "on": "2025-02-05"})],
            "closure",
            {"reason": "goals-met", "on": "2025-02-06"},
            "phase",
            "already closed",
        ),
    ],
)
async def test_impossible_moves_are_409_and_write_nothing(
    client: httpx.AsyncClient,
    person_id: str,
    setup: list[tuple[str, dict[str, Any]]],
    action: str,
    body: dict[str, Any],
    field: str,
    words: str,
) -> None:
    case_id = await refer(client, person_id)
    for step, step_body in setup:
        assert (await client.post(f"{API}/cases/{case_id}/{step}", json=step_body)).status_code == 200
    before = (await client.get(f"/fhir/EpisodeOfCare/{case_id}")).json()
    response = await client.post(f"{API}/cases/{case_id}/{action}", json=body)
    assert response.status_code == 409, response.text
    assert fields(response) == {field}
    assert words in issues(response)[0][0]
    assert (await client.get(f"/fhir/EpisodeOfCare/{case_id}")).json() == before


async def test_bad_moves_are_422_naming_the_field(client: httpx.AsyncClient, person_id: str) -> None:
    case_id = await refer(client, person_id)
    early = await client.post(f"{API}/cases/{case_id}/allocation", json={"keyworkers": [KW1], "on": "2025-01-01"})
    assert early.status_code == 422 and fields(early) == {"on"}
    nobody = await client.post(f"{API}/cases/{case_id}/allocation", json={"keyworkers": [], "on": "2025-02-10"})
    assert nobody.status_code == 422 and fields(nobody) == {"keyworkers"}
    reason = await client.post(f"{API}/cases/{case_id}/closure", json={"reason": "bored", "on": "2025-02-10"})
    assert reason.status_code == 422 and fields(reason) == {"reason"}
    case = (await client.get(f"{API}/cases/{case_id}")).json()
    assert [p["phase"] for p in case["history"]] == ["referred"]


async def test_a_whole_case_with_an_impossible_history_is_refused(client: httpx.AsyncClient, person_id: str) -> None:
    data = record("keyworking-case")
    data["history"] = [
        {"phase": "referred", "start": "2025-02-03", "end": "2025-02-10"},
        {"phase": "monitoring", "start": "2025-02-10"},
    ]
    response = await client.put(f"{API}/cases/{data['id']}", json=data)
    assert response.status_code == 409
    assert fields(response) == {"history[1].phase"}
    assert (await client.get(f"{API}/cases/{data['id']}")).status_code == 404


async def test_a_keyworker_change_records_the_reason_on_the_team(client: httpx.AsyncClient, person_id: str) -> None:
    team = {
        "person_id": person_id,
        "members": [{"role": "keyworker", "member": KW1, "start": "2025-02-10"}],
    }
    team_id = (await client.post(f"{API}/care-teams", json=team)).json()["id"]
    case = await client.post(
        f"{API}/cases",
        json={
            "person_id": person_id,
            "service_model": "nhs-ld-autism",
            "referred_on": "2025-02-03",
            "care_team_id": team_id,
        },
    )
    case_id = case.json()["id"]
    await client.post(f"{API}/cases/{case_id}/allocation", json={"keyworkers": [KW1], "on": "2025-02-10"})
    handover = {"outgoing": KW1, "incoming": KW2, "reason": "staff-left-or-absent", "on": "2025-04-01"}
    response = await client.post(f"{API}/cases/{case_id}/keyworker-change", json=handover)
    assert response.status_code == 200, response.text
    assert response.json()["keyworkers"] == [KW2]
    members = (await client.get(f"{API}/care-teams/{team_id}")).json()["members"]
    assert [(m["member"]["name"], m.get("end"), m.get("change_reason")) for m in members] == [
        ("Kim Ashworth", "2025-04-01", None),
        ("Lee Okafor", None, "staff-left-or-absent"),
    ]


async def test_care_team_membership(client: httpx.AsyncClient, person_id: str) -> None:
    team_id = (
        await client.post(
            f"{API}/care-teams",
            json={"person_id": person_id, "members": [{"role": "keyworker", "member": KW1, "start": "2025-02-10"}]},
        )
    ).json()["id"]
    added = await client.post(
        f"{API}/care-teams/{team_id}/members",
        json={
            "role": "senco-or-teacher",
            "member": {"name": "Ms Ruth Dale"},
            "agency": {"ods_code": "100123"},
            "start": "2025-03-01",
        },
    )
    assert added.status_code == 200, added.text
    assert [m["role"] for m in added.json()["members"]] == ["keyworker", "senco-or-teacher"]
    ended = await client.post(f"{API}/care-teams/{team_id}/members/1/end", json={"on": "2025-07-20"})
    assert ended.json()["members"][1]["end"] == "2025-07-20"
    twice = await client.post(f"{API}/care-teams/{team_id}/members/1/end", json={"on": "2025-07-21"})
    assert twice.status_code == 409
    for extra in (KW2, KW3):
        response = await client.post(
            f"{API}/care-teams/{team_id}/members", json={"role": "keyworker", "member": extra, "start": "2025-04-01"}
        )
    assert response.status_code == 409
    assert "two keyworkers" in issues(response)[0][0]


# -- C(E)TR recommendations -----------------------------------------------------------------------------------------


async def test_owners_update_recommendations_until_done(client: httpx.AsyncClient, person_id: str) -> None:
    meeting = record("review-meeting")
    await client.put(f"{API}/reviews/{meeting['id']}", json=meeting)
    index = next(i for i, r in enumerate(meeting["recommendations"]) if "status" not in r)  # requested
    rec_id = meeting["recommendations"][index].get("id") or f"{meeting['id']}-rec-{index + 1}"
    owner = meeting["recommendations"][index]["owner_agency"]["ods_code"]
    listed = (await client.get(f"{API}/recommendations", params={"owner_agency": owner.lower()})).json()["items"]
    assert rec_id in [r["id"] for r in listed]
    for status in ("accepted", "in-progress", "completed"):
        response = await client.patch(f"{API}/recommendations/{rec_id}", json={"status": status})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
    reopened = await client.patch(f"{API}/recommendations/{rec_id}", json={"status": "accepted"})
    assert reopened.status_code == 409
    assert (await client.get(f"/fhir/Task/{rec_id}")).json()["status"] == "completed"
    # The meeting reads the owner's update back.
    read = (await client.get(f"{API}/reviews/{meeting['id']}")).json()
    assert read["recommendations"][index]["status"] == "completed"


async def test_overdue_recommendations(client: httpx.AsyncClient, person_id: str) -> None:
    meeting = record("review-meeting")
    await client.put(f"{API}/reviews/{meeting['id']}", json=meeting)
    overdue = (await client.get(f"{API}/recommendations", params={"person_id": person_id, "overdue": "true"})).json()
    # The sample's due dates are in 2025 and none is done: all are overdue today.
    open_ones = [
        r for r in meeting["recommendations"] if r.get("status", "requested") not in ("completed", "cancelled")
    ]
    assert len(overdue["items"]) == len(open_ones) > 0


# -- idempotency ---------------------------------------------------------------------------------------------------


async def test_idempotency_key_replays_and_refuses_a_different_request(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "3f0c6b3e-2a51-4b8e-9d8c-0f6b1c2d3e4f"}
    body = without_id(record("person"))
    first = await client.post(f"{API}/people", json=body, headers=headers)
    assert first.status_code == 201
    second = await client.post(f"{API}/people", json=body, headers=headers)
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert await fhir_count(client, "Patient") == 1
    other = await client.post(f"{API}/people", json={**body, "postcode": "LS1 4AP"}, headers=headers)
    assert other.status_code == 422
    assert fields(other) == {"Idempotency-Key"}
    # Without the key, the same body is a second person.
    assert (await client.post(f"{API}/people", json=body)).status_code == 201
    assert await fhir_count(client, "Patient") == 2


async def test_openapi_documents_the_records(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    paths = schema["paths"]
    for path in ("/api/v1/people", "/api/v1/cases/{case_id}/allocation", "/api/v1/recommendations/{recommendation_id}"):
        assert path in paths
    assert {"Person", "RegisterEntry", "KeyworkingCase", "CareTeam", "Contact", "ReviewMeeting"} <= set(
        schema["components"]["schemas"]
    )
    create_case = paths["/api/v1/cases"]["post"]
    assert create_case["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("CaseReferral")
    params = {p["name"] for p in paths["/api/v1/people"]["post"]["parameters"]}
    assert "Idempotency-Key" in params


async def test_an_oversized_body_is_refused_with_413(client: httpx.AsyncClient, settings: Any) -> None:
    huge = {**without_id(record("person")), "name": {"family": "x" * (settings.max_request_bytes + 10)}}
    response = await client.post(f"{API}/people", json=huge)
    assert response.status_code == 413
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_a_record_cannot_move_to_another_person(client: httpx.AsyncClient) -> None:
    """Hazard H1 (wrong-person match): once written, a record's person is fixed."""
    assert (await client.put(f"{API}/people/yp-amira-khan", json=record("person"))).status_code == 201
    other = {**record("person"), "id": "yp-other", "nhs_number": "999 000 0018", "upn": None, "la_child_id": None}
    assert (
        await client.put(f"{API}/people/yp-other", json={k: v for k, v in other.items() if v is not None})
    ).status_code == 201
    assert (await client.put(f"{API}/care-teams/team-amira", json=record("care-team"))).status_code == 201
    before = await store_size(client)
    moved = await client.put(f"{API}/care-teams/team-amira", json=record("care-team", person_id="yp-other"))
    assert moved.status_code == 409
    assert moved.json()["issue"][0]["expression"] == ["person_id"]
    assert await store_size(client) == before
    kept = (await client.get(f"{API}/care-teams/team-amira")).json()
    assert kept["person_id"] == "yp-amira-khan"
