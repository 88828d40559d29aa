"""Our own SearchParameters over HTTP on both databases, on what the mappings write.

The records are the golden ones (``tests/mappings/records``), mapped with ``mappings.keyworking.mapping.to_fhir``
and written through the FHIR API, so the searches run on exactly the resources the domain API stores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from mappings.keyworking import urls
from mappings.keyworking.mapping import to_fhir
from mappings.keyworking.records import KeyworkingCase, Record, RegisterEntry, ReviewMeeting

RECORDS = Path(__file__).parents[1] / "mappings" / "records"
FHIR_JSON = {"content-type": "application/fhir+json"}
PERSON = "yp-amira-khan"


def record(kind: type[Record], name: str, **changes: Any) -> Record:
    data = kind.model_validate_json((RECORDS / f"{name}.json").read_text()).model_dump(mode="json")
    return kind.model_validate({**data, **changes})


async def write(client: httpx.AsyncClient, rec: Record) -> list[dict[str, Any]]:
    resources = to_fhir(rec)
    for resource in resources:
        path = f"/fhir/{resource['resourceType']}/{resource['id']}"
        response = await client.put(path, json=resource, headers=FHIR_JSON)
        assert response.status_code in (200, 201), response.text
    return resources


async def ids(client: httpx.AsyncClient, path: str, **params: str) -> list[str]:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return sorted(e["resource"]["id"] for e in response.json().get("entry", []) if e["search"]["mode"] == "match")


def referred_case(case_id: str) -> Record:
    return record(
        KeyworkingCase,
        "keyworking-case",
        id=case_id,
        history=[{"phase": "referred", "start": "2025-06-02"}],
        keyworkers=[],
    )


async def test_cases_are_found_by_their_current_phase(client: httpx.AsyncClient) -> None:
    await write(client, record(KeyworkingCase, "keyworking-case"))  # intensive now; referred, allocated before
    await write(client, referred_case("kw-waiting"))

    assert await ids(client, "/fhir/EpisodeOfCare", **{"keyworking-phase": "intensive"}) == ["kw-amira-2025"]
    assert await ids(client, "/fhir/EpisodeOfCare", **{"keyworking-phase": "referred"}) == ["kw-waiting"]
    system = urls.CS_KEYWORKING_PHASE
    assert await ids(client, "/fhir/EpisodeOfCare", **{"keyworking-phase": f"{system}|intensive"}) == ["kw-amira-2025"]
    # Past phases (statusHistory) are not the case's phase: only the current one is indexed.
    assert await ids(client, "/fhir/EpisodeOfCare", **{"keyworking-phase": "allocated"}) == []
    assert await ids(client, "/fhir/EpisodeOfCare", **{"keyworking-phase": "intensive,referred"}) == [
        "kw-amira-2025",
        "kw-waiting",
    ]
    assert await ids(
        client, "/fhir/EpisodeOfCare", **{"keyworking-phase": "referred", "patient": f"Patient/{PERSON}"}
    ) == ["kw-waiting"]


async def test_a_phase_change_moves_the_case_between_searches(client: httpx.AsyncClient) -> None:
    await write(client, referred_case("kw-moving"))
    assert await ids(client, "/fhir/EpisodeOfCare", **{"keyworking-phase": "referred"}) == ["kw-moving"]
    allocated = record(
        KeyworkingCase,
        "keyworking-case",
        id="kw-moving",
        history=[
            {"phase": "referred", "start": "2025-06-02", "end": "2025-06-09"},
            {"phase": "allocated", "start": "2025-06-09"},
        ],
    )
    await write(client, allocated)
    assert await ids(client, "/fhir/EpisodeOfCare", **{"keyworking-phase": "referred"}) == []
    assert await ids(client, "/fhir/EpisodeOfCare", **{"keyworking-phase": "allocated"}) == ["kw-moving"]


async def test_register_flags_are_found_by_rating(client: httpx.AsyncClient) -> None:
    written = await write(client, record(RegisterEntry, "register-entry"))
    flags = [r["id"] for r in written if r["resourceType"] == "Flag"]
    assert len(flags) == 1
    assert await ids(client, "/fhir/Flag", rating="red") == flags
    assert await ids(client, "/fhir/Flag", rating=f"{urls.CS_DSR_RATING}|red") == flags
    assert await ids(client, "/fhir/Flag", rating="green") == []
    assert await ids(client, "/fhir/Flag", rating="red", patient=PERSON) == flags
    assert await ids(client, "/fhir/Flag", rating="red", patient="someone-else") == []


async def test_recommendations_are_found_by_owner_agency(client: httpx.AsyncClient) -> None:
    written = await write(client, record(ReviewMeeting, "review-meeting"))
    tasks = {r["id"]: r for r in written if r["resourceType"] == "Task"}

    def owned_by(ods_code: str) -> list[str]:
        return sorted(
            tid
            for tid, task in tasks.items()
            for e in task.get("extension", [])
            if e["url"] == urls.EXT_OWNER_AGENCY and e["valueReference"]["identifier"]["value"] == ods_code
        )

    assert owned_by("RGD") and owned_by("383")
    ods = urls.ODS_ORGANISATION
    assert await ids(client, "/fhir/Task", **{"owner-agency:identifier": f"{ods}|RGD"}) == owned_by("RGD")
    assert await ids(client, "/fhir/Task", **{"owner-agency:identifier": "383"}) == owned_by("383")
    assert await ids(client, "/fhir/Task", **{"owner-agency:identifier": f"{ods}|XXX"}) == []
    # The mappings name agencies by ODS code only (a logical reference), so nothing matches a literal one.
    assert await ids(client, "/fhir/Task", **{"owner-agency": "Organization/RGD"}) == []


async def test_our_parameters_are_in_the_capability_statement(client: httpx.AsyncClient) -> None:
    statement = (await client.get("/fhir/metadata")).json()
    by_type = {r["type"]: {p["name"]: p for p in r["searchParam"]} for r in statement["rest"][0]["resource"]}
    expected = {
        ("EpisodeOfCare", "keyworking-phase", "token"),
        ("Flag", "rating", "token"),
        ("Task", "owner-agency", "reference"),
    }
    for res_type, name, kind in expected:
        param = by_type[res_type][name]
        assert param["type"] == kind
        assert param["definition"] == f"{urls.BASE}/SearchParameter/{res_type.lower()}-{name}"
    task = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Task")
    assert "Task:owner-agency" in task["searchInclude"]


async def test_an_unknown_phase_parameter_modifier_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/fhir/EpisodeOfCare", params={"keyworking-phase:contains": "int"})
    assert response.status_code == 400
