"""The FHIR REST interactions over HTTP on both databases: headers, versions, conditional forms and errors."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NHS = "https://fhir.nhs.uk/Id/nhs-number"
FHIR_JSON = {"content-type": "application/fhir+json"}


def patient(nhs: str = "9000000009", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": "Rivers", "given": ["Ash"]}],
        "birthDate": "2011-05-06",
        **extra,
    }


async def create(client: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await client.post(f"/fhir/{body['resourceType']}", content=orjson.dumps(body), headers=FHIR_JSON | headers)


async def test_create_answers_201_with_location_etag_and_last_modified(client: httpx.AsyncClient) -> None:
    response = await create(client, patient())
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"].endswith(f"/fhir/Patient/{body['id']}/_history/1")
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["last-modified"].endswith("GMT")
    assert body["meta"]["versionId"] == "1"
    read = await client.get(f"/fhir/Patient/{body['id']}")
    assert read.status_code == 200 and read.content == response.content
    assert read.headers["content-type"].startswith("application/fhir+json")


async def test_update_with_if_match_and_stale_version(client: httpx.AsyncClient) -> None:
    created = (await create(client, patient())).json()
    rid = created["id"]
    body = {**patient(), "id": rid, "gender": "other"}
    ok = await client.put(f"/fhir/Patient/{rid}", content=orjson.dumps(body), headers=FHIR_JSON | {"If-Match": 'W/"1"'})
    assert ok.status_code == 200 and ok.headers["etag"] == 'W/"2"'
    stale = await client.put(
        f"/fhir/Patient/{rid}", content=orjson.dumps(body), headers=FHIR_JSON | {"If-Match": 'W/"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    assert (await client.get(f"/fhir/Patient/{rid}")).json()["meta"]["versionId"] == "2"
    old = await client.get(f"/fhir/Patient/{rid}/_history/1")
    assert old.status_code == 200 and "gender" not in old.json()


async def test_update_with_a_client_assigned_id_creates(client: httpx.AsyncClient) -> None:
    body = {**patient(), "id": "ash-rivers"}
    response = await client.put("/fhir/Patient/ash-rivers", content=orjson.dumps(body), headers=FHIR_JSON)
    assert response.status_code == 201
    assert (await client.get("/fhir/Patient/ash-rivers")).status_code == 200
    wrong = await client.put("/fhir/Patient/someone-else", content=orjson.dumps(body), headers=FHIR_JSON)
    assert wrong.status_code == 400


async def test_delete_then_read_is_gone_and_history_records_it(client: httpx.AsyncClient) -> None:
    rid = (await create(client, patient())).json()["id"]
    deleted = await client.delete(f"/fhir/Patient/{rid}")
    assert deleted.status_code == 204
    gone = await client.get(f"/fhir/Patient/{rid}")
    assert gone.status_code == 410 and gone.json()["resourceType"] == "OperationOutcome"
    assert (await client.get(f"/fhir/Patient/{rid}/_history/2")).status_code == 410
    assert (await client.get(f"/fhir/Patient/{rid}/_history/1")).status_code == 200
    history = (await client.get(f"/fhir/Patient/{rid}/_history")).json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
    assert (await client.get("/fhir/Patient", params={"_id": rid})).json()["total"] == 0


async def test_unknown_resource_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/fhir/Patient/does-not-exist")
    assert response.status_code == 404
    assert response.json()["issue"][0]["code"] == "not-found"


async def test_history_paging_links_work(client: httpx.AsyncClient) -> None:
    rid = (await create(client, patient())).json()["id"]
    for n in range(4):
        body = {**patient(), "id": rid, "birthDate": f"2011-05-0{n + 1}"}
        assert (await client.put(f"/fhir/Patient/{rid}", content=orjson.dumps(body), headers=FHIR_JSON)).is_success
    url: str | None = f"/fhir/Patient/{rid}/_history?_count=2"
    versions: list[str] = []
    while url:
        page = (await client.get(url)).json()
        assert page["type"] == "history" and page["total"] == 5
        versions += [e["resource"]["meta"]["versionId"] for e in page["entry"]]
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        url = nxt[0].split("gateway.test", 1)[1] if nxt else None
    assert versions == ["5", "4", "3", "2", "1"]
    type_history = (await client.get("/fhir/Patient/_history", params={"_count": "50"})).json()
    assert type_history["total"] >= 5


async def test_conditional_create(client: httpx.AsyncClient) -> None:
    first = await create(client, patient("9000000017"))
    again = await create(client, patient("9000000017"), **{"If-None-Exist": f"identifier={NHS}|9000000017"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert again.json()["meta"]["versionId"] == "1"
    await create(client, patient("9000000017"))  # a second one, made without the condition
    ambiguous = await create(client, patient("9000000017"), **{"If-None-Exist": f"identifier={NHS}|9000000017"})
    assert ambiguous.status_code == 412


async def test_conditional_update(client: httpx.AsyncClient) -> None:
    url = f"/fhir/Patient?identifier={NHS}|9000000025"
    made = await client.put(url, content=orjson.dumps(patient("9000000025")), headers=FHIR_JSON)
    assert made.status_code == 201
    rid = made.json()["id"]
    changed = await client.put(url, content=orjson.dumps(patient("9000000025", gender="male")), headers=FHIR_JSON)
    assert changed.status_code == 200 and changed.json()["id"] == rid and changed.json()["meta"]["versionId"] == "2"
    await create(client, patient("9000000025"))
    two = await client.put(url, content=orjson.dumps(patient("9000000025")), headers=FHIR_JSON)
    assert two.status_code == 412


async def test_conditional_delete(client: httpx.AsyncClient) -> None:
    rid = (await create(client, patient("9000000033"))).json()["id"]
    response = await client.delete("/fhir/Patient", params={"identifier": f"{NHS}|9000000033"})
    assert response.status_code == 200
    assert (await client.get(f"/fhir/Patient/{rid}")).status_code == 410


async def test_invalid_resource_names_the_element_and_stores_nothing(client: httpx.AsyncClient) -> None:
    bad = patient(birthDate="06/05/2011", name=[{"given": "Ash"}])
    response = await create(client, bad)
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    paths = {e for issue in outcome["issue"] for e in issue.get("expression", [])}
    assert "Patient.birthDate" in paths
    assert any(p.startswith("Patient.name[0].given") for p in paths)
    assert (await client.get("/fhir/Patient", params={"_summary": "count"})).json()["total"] == 0


async def test_request_errors(client: httpx.AsyncClient) -> None:
    wrong_type = await client.post("/fhir/Patient", content=orjson.dumps({"resourceType": "Flag"}), headers=FHIR_JSON)
    assert wrong_type.status_code == 400
    assert (await client.get("/fhir/Medication/1")).status_code == 404
    xml = await client.post("/fhir/Patient", content=b"<Patient/>", headers={"content-type": "application/fhir+xml"})
    assert xml.status_code == 415
    not_json = await client.post("/fhir/Patient", content=b"{nope", headers=FHIR_JSON)
    assert not_json.status_code == 400 and not_json.json()["resourceType"] == "OperationOutcome"


async def test_prefer_return(client: httpx.AsyncClient) -> None:
    minimal = await create(client, patient(), Prefer="return=minimal")
    assert minimal.status_code == 201 and minimal.content == b"" and "location" in minimal.headers
    outcome = await create(client, patient(), Prefer="return=OperationOutcome")
    assert outcome.json()["resourceType"] == "OperationOutcome"


async def test_capability_statement_matches_the_routes(client: httpx.AsyncClient) -> None:
    statement = (await client.get("/fhir/metadata")).json()
    assert statement["fhirVersion"] == "4.0.1"
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    issue_types = {
        "Patient", "RelatedPerson", "Practitioner", "PractitionerRole", "Organization", "Location",
        "HealthcareService", "CareTeam", "EpisodeOfCare", "Encounter", "Flag", "Observation", "Condition", "Task",
        "Consent", "ServiceRequest", "CarePlan", "Composition", "DocumentReference", "Provenance", "AuditEvent",
    }  # fmt: skip
    assert issue_types <= set(resources)
    for res_type, entry in resources.items():
        codes = {i["code"] for i in entry["interaction"]}
        assert codes == {
            "read",
            "vread",
            "update",
            "delete",
            "history-instance",
            "history-type",
            "create",
            "search-type",
        }
        # each declared interaction answers (not 404/405) for this type
        assert (await client.get(f"/fhir/{res_type}", params={"_summary": "count"})).status_code == 200
        assert (await client.get(f"/fhir/{res_type}/_history", params={"_count": "1"})).status_code == 200
    interactions = {i["code"] for i in statement["rest"][0]["interaction"]}
    assert {"transaction", "batch", "history-system"} <= interactions
    patient_ops = {op["name"] for op in resources["Patient"]["operation"]}
    assert patient_ops == {"validate", "everything", "export"}
    assert {op["name"] for op in resources["Group"]["operation"]} == {"validate", "export"}
    assert {op["name"] for op in statement["rest"][0]["operation"]} == {"export"}
    assert {op["name"] for op in resources["Encounter"]["operation"]} == {"validate"}
    checked = await client.post("/fhir/Patient/$validate", json={"resourceType": "Patient", "birthDate": "bad"})
    assert checked.status_code == 200 and checked.json()["resourceType"] == "OperationOutcome"


_NAME = st.text(st.characters(whitelist_categories=("Lu", "Ll", "Zs")), min_size=1, max_size=20).filter(
    lambda s: s.strip() == s and s != ""
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    family=_NAME,
    given_names=st.lists(_NAME, min_size=1, max_size=3),
    nhs=st.from_regex(r"9[0-9]{9}", fullmatch=True),
    born=st.dates(),
)
async def test_any_valid_patient_round_trips(
    client: httpx.AsyncClient, family: str, given_names: list[str], nhs: str, born: Any
) -> None:
    body = {
        "resourceType": "Patient",
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": family, "given": given_names}],
        "birthDate": born.isoformat(),
    }
    created = await create(client, body)
    assert created.status_code == 201, created.text
    stored = (await client.get(f"/fhir/Patient/{created.json()['id']}")).json()
    assert {k: v for k, v in stored.items() if k not in ("id", "meta")} == body
