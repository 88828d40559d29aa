"""batch and transaction Bundles at POST /fhir, on both databases (FHIR R4 http.html#transaction)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NHS = "https://fhir.nhs.uk/Id/nhs-number"
JSON = {"Content-Type": "application/fhir+json"}
LOCATION = re.compile(r"^(?P<type>[A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]+)/_history/(?P<version>\d+)$")

Json = dict[str, Any]


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def nhs_number() -> str:
    return str(uuid.uuid4().int)[:10]


def patient(nhs: str, family: str = "Smith") -> Json:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": family, "given": ["Alex"]}],
    }


def episode(patient_ref: str) -> Json:
    return {"resourceType": "EpisodeOfCare", "status": "active", "patient": {"reference": patient_ref}}


def encounter(patient_ref: str, episode_ref: str) -> Json:
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
        "subject": {"reference": patient_ref},
        "episodeOfCare": [{"reference": episode_ref}],
        "extension": [{"url": "https://example.org/keyworker-note", "valueReference": {"reference": patient_ref}}],
    }


def post(resource: Json, full_url: str | None = None, if_none_exist: str | None = None) -> Json:
    entry: Json = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}
    if full_url:
        entry["fullUrl"] = full_url
    if if_none_exist:
        entry["request"]["ifNoneExist"] = if_none_exist
    return entry


def request(method: str, url: str, resource: Json | None = None, **extra: str) -> Json:
    entry: Json = {"request": {"method": method, "url": url, **extra}}
    if resource is not None:
        entry["resource"] = resource
    return entry


def bundle(kind: str, *entries: Json) -> Json:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


async def send(client: httpx.AsyncClient, body: Json, prefer: str | None = None) -> httpx.Response:
    headers = {**JSON, **({"Prefer": prefer} if prefer else {})}
    return await client.post("/fhir", json=body, headers=headers)


async def count(client: httpx.AsyncClient, res_type: str, *params: tuple[str, str]) -> int:
    r = await client.get(f"/fhir/{res_type}", params=[*params, ("_total", "accurate")])
    assert r.status_code == 200, r.text
    total: int = r.json()["total"]
    return total


async def read_location(client: httpx.AsyncClient, entry: Json) -> Json:
    m = LOCATION.match(entry["response"]["location"])
    assert m, entry
    r = await client.get(f"/fhir/{m['type']}/{m['id']}")
    assert r.status_code == 200
    doc: Json = r.json()
    return doc


def ref_of(entry: Json) -> str:
    m = LOCATION.match(entry["response"]["location"])
    assert m, entry
    return f"{m['type']}/{m['id']}"


def expressions(outcome: Json) -> set[str]:
    return {e for issue in outcome["issue"] for e in issue.get("expression", [])}


# -- transactions -------------------------------------------------------------------------------------------------


async def test_transaction_resolves_urn_references_between_entries(client: httpx.AsyncClient) -> None:
    p, e = urn(), urn()
    body = bundle(
        "transaction",
        post(encounter(p, e), urn()),  # refers forward: order in the Bundle does not matter
        post(patient(nhs_number()), p),
        post(episode(p), e),
    )
    r = await send(client, body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "transaction-response"
    assert [x["response"]["status"] for x in out["entry"]] == ["201 Created"] * 3
    assert [ref_of(x).split("/")[0] for x in out["entry"]] == ["Encounter", "Patient", "EpisodeOfCare"]
    for x in out["entry"]:
        assert x["response"]["etag"] == 'W/"1"'
        assert x["response"]["lastModified"]
        assert x["resource"]["id"] == ref_of(x).split("/")[1]
    patient_ref, episode_ref = ref_of(out["entry"][1]), ref_of(out["entry"][2])
    stored_encounter = await read_location(client, out["entry"][0])
    assert stored_encounter["subject"]["reference"] == patient_ref
    assert stored_encounter["episodeOfCare"][0]["reference"] == episode_ref
    assert stored_encounter["extension"][0]["valueReference"]["reference"] == patient_ref
    assert (await read_location(client, out["entry"][2]))["patient"]["reference"] == patient_ref
    # the rewritten references are indexed: search by them finds the new resources
    found = await client.get("/fhir/Encounter", params={"subject": patient_ref})
    assert [x["resource"]["id"] for x in found.json()["entry"]] == [stored_encounter["id"]]


async def test_references_inside_contained_resources_are_rewritten(client: httpx.AsyncClient) -> None:
    p = urn()
    flagged = {
        "resourceType": "Flag",
        "status": "active",
        "code": {"text": "keyworker allocated"},
        "subject": {"reference": p},
        "contained": [
            {"resourceType": "Practitioner", "id": "kw", "extension": [_ref_extension(p)]},
        ],
        "author": {"reference": "#kw"},
    }
    r = await send(client, bundle("transaction", post(flagged), post(patient(nhs_number()), p)))
    assert r.status_code == 200, r.text
    patient_ref = ref_of(r.json()["entry"][1])
    flag = await read_location(client, r.json()["entry"][0])
    assert flag["subject"]["reference"] == patient_ref
    assert flag["contained"][0]["extension"][0]["valueReference"]["reference"] == patient_ref
    assert flag["author"]["reference"] == "#kw"


async def test_transaction_with_an_invalid_entry_stores_nothing(client: httpx.AsyncClient) -> None:
    nhs = [nhs_number() for _ in range(3)]
    before = (await client.get("/fhir/Patient/_history")).json()["total"]
    bad = patient(nhs[2])
    bad["name"][0]["given"] = "Alex"  # must be a list
    r = await send(client, bundle("transaction", post(patient(nhs[0])), post(patient(nhs[1])), post(bad)))
    assert r.status_code == 400
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Bundle.entry[2].resource.name[0].given" in expressions(outcome)
    for number in nhs:
        assert await count(client, "Patient", ("identifier", f"{NHS}|{number}")) == 0
    assert (await client.get("/fhir/Patient/_history")).json()["total"] == before


async def test_a_malformed_entry_refuses_the_transaction_before_anything_runs(client: httpx.AsyncClient) -> None:
    nhs = nhs_number()
    body = bundle("transaction", post(patient(nhs)), {"request": {"method": "POST"}, "resource": patient(nhs)})
    r = await send(client, body)
    assert r.status_code == 400
    assert expressions(r.json()) == {"Bundle.entry[1].request.url"}
    assert await count(client, "Patient", ("identifier", f"{NHS}|{nhs}")) == 0


async def test_conditional_create_in_a_transaction_reuses_the_existing_resource(client: httpx.AsyncClient) -> None:
    nhs = nhs_number()
    existing = await client.post("/fhir/Patient", json=patient(nhs), headers=JSON)
    existing_id = existing.json()["id"]
    p, e = urn(), urn()
    body = bundle(
        "transaction",
        post(patient(nhs, family="Other"), p, if_none_exist=f"identifier={NHS}|{nhs}"),
        post(episode(p), e),
    )
    r = await send(client, body)
    assert r.status_code == 200, r.text
    first, second = r.json()["entry"]
    assert first["response"]["status"] == "200 OK"
    assert ref_of(first) == f"Patient/{existing_id}"
    assert first["resource"]["name"][0]["family"] == "Smith"  # the existing one, unchanged
    assert (await read_location(client, second))["patient"]["reference"] == f"Patient/{existing_id}"
    assert await count(client, "Patient", ("identifier", f"{NHS}|{nhs}")) == 1


async def test_conditional_create_without_a_match_creates(client: httpx.AsyncClient) -> None:
    nhs = nhs_number()
    p = urn()
    body = bundle(
        "transaction", post(patient(nhs), p, if_none_exist=f"Patient?identifier={NHS}|{nhs}"), post(episode(p))
    )
    r = await send(client, body)
    assert r.status_code == 200, r.text
    first, second = r.json()["entry"]
    assert first["response"]["status"] == "201 Created"
    assert (await read_location(client, second))["patient"]["reference"] == ref_of(first)
    assert await count(client, "Patient", ("identifier", f"{NHS}|{nhs}")) == 1


async def test_conditional_update_and_delete_entries(client: httpx.AsyncClient) -> None:
    kept, gone, fresh = nhs_number(), nhs_number(), nhs_number()
    kept_id = (await client.post("/fhir/Patient", json=patient(kept), headers=JSON)).json()["id"]
    gone_id = (await client.post("/fhir/Patient", json=patient(gone), headers=JSON)).json()["id"]
    body = bundle(
        "transaction",
        request("PUT", f"Patient?identifier={NHS}|{kept}", patient(kept, family="Jones")),
        request("DELETE", f"Patient?identifier={NHS}|{gone}"),
        request("PUT", f"Patient?identifier={NHS}|{fresh}", patient(fresh, family="New")),
    )
    r = await send(client, body)
    assert r.status_code == 200, r.text
    updated, deleted, created = r.json()["entry"]
    assert updated["response"]["status"] == "200 OK"
    assert updated["response"]["location"] == f"Patient/{kept_id}/_history/2"
    assert (await client.get(f"/fhir/Patient/{kept_id}")).json()["name"][0]["family"] == "Jones"
    assert deleted["response"]["status"] == "204 No Content"
    assert (await client.get(f"/fhir/Patient/{gone_id}")).status_code == 410
    assert created["response"]["status"] == "201 Created"
    assert (await read_location(client, created))["identifier"][0]["value"] == fresh


async def test_update_and_delete_by_id_entries(client: httpx.AsyncClient) -> None:
    a = (await client.post("/fhir/Patient", json=patient(nhs_number()), headers=JSON)).json()
    b = (await client.post("/fhir/Patient", json=patient(nhs_number()), headers=JSON)).json()
    changed = {**patient(a["identifier"][0]["value"], family="Moved"), "id": a["id"]}
    body = bundle(
        "transaction",
        request("PUT", f"Patient/{a['id']}", changed, ifMatch='W/"1"'),
        request("DELETE", f"Patient/{b['id']}"),
        request("PUT", "Patient/client-chosen-1", {**patient(nhs_number()), "id": "client-chosen-1"}),
    )
    r = await send(client, body)
    assert r.status_code == 200, r.text
    statuses = [x["response"]["status"] for x in r.json()["entry"]]
    assert statuses == ["200 OK", "204 No Content", "201 Created"]
    assert (await client.get(f"/fhir/Patient/{a['id']}")).json()["meta"]["versionId"] == "2"
    assert (await client.get(f"/fhir/Patient/{b['id']}")).status_code == 410
    assert (await client.get("/fhir/Patient/client-chosen-1")).status_code == 200


async def test_stale_if_match_fails_the_transaction_with_412_and_rolls_back(client: httpx.AsyncClient) -> None:
    current = (await client.post("/fhir/Patient", json=patient(nhs_number()), headers=JSON)).json()
    rid = current["id"]
    await client.put(f"/fhir/Patient/{rid}", json={**current, "gender": "female"}, headers=JSON)
    newcomer = nhs_number()
    body = bundle(
        "transaction",
        post(patient(newcomer)),
        request("PUT", f"Patient/{rid}", {**current, "gender": "male"}, ifMatch='W/"1"'),
    )
    r = await send(client, body)
    assert r.status_code == 412
    assert "Bundle.entry[1]" in expressions(r.json())
    assert await count(client, "Patient", ("identifier", f"{NHS}|{newcomer}")) == 0
    now = (await client.get(f"/fhir/Patient/{rid}")).json()
    assert now["meta"]["versionId"] == "2" and now["gender"] == "female"


async def test_two_entries_changing_one_resource_are_refused(client: httpx.AsyncClient) -> None:
    rid = (await client.post("/fhir/Patient", json=patient(nhs_number()), headers=JSON)).json()["id"]
    body = bundle(
        "transaction",
        request("PUT", f"Patient/{rid}", {**patient(nhs_number()), "id": rid}),
        request("DELETE", f"Patient/{rid}"),
    )
    r = await send(client, body)
    assert r.status_code == 400
    assert expressions(r.json()) == {"Bundle.entry[0].request.url", "Bundle.entry[1].request.url"}
    assert (await client.get(f"/fhir/Patient/{rid}")).json()["meta"]["versionId"] == "1"


async def test_duplicate_full_urls_are_refused(client: httpx.AsyncClient) -> None:
    p = urn()
    r = await send(client, bundle("transaction", post(patient(nhs_number()), p), post(patient(nhs_number()), p)))
    assert r.status_code == 400
    assert expressions(r.json()) == {"Bundle.entry[0].fullUrl", "Bundle.entry[1].fullUrl"}


async def test_a_placeholder_naming_no_entry_is_refused(client: httpx.AsyncClient) -> None:
    nhs = nhs_number()
    r = await send(client, bundle("transaction", post(patient(nhs)), post(episode(urn()))))
    assert r.status_code == 400
    assert expressions(r.json()) == {"Bundle.entry[1].resource.patient.reference"}
    assert await count(client, "Patient", ("identifier", f"{NHS}|{nhs}")) == 0


async def test_get_entries_run_last_and_see_the_transactions_writes(client: httpx.AsyncClient) -> None:
    p = urn()
    nhs = nhs_number()
    body = bundle(
        "transaction",
        request("GET", f"EpisodeOfCare?patient={p}"),
        post(patient(nhs), p),
        post(episode(p)),
    )
    r = await send(client, body)
    assert r.status_code == 200, r.text
    search, created, ep = r.json()["entry"]
    assert search["response"]["status"] == "200 OK"
    assert search["resource"]["type"] == "searchset"
    assert [x["resource"]["id"] for x in search["resource"]["entry"]] == [ref_of(ep).split("/")[1]]
    assert created["response"]["status"] == "201 Created"


async def test_prefer_return_minimal_and_operation_outcome(client: httpx.AsyncClient) -> None:
    r = await send(client, bundle("transaction", post(patient(nhs_number()))), prefer="return=minimal")
    entry = r.json()["entry"][0]
    assert "resource" not in entry and entry["response"]["status"] == "201 Created"
    assert LOCATION.match(entry["response"]["location"])
    r = await send(client, bundle("transaction", post(patient(nhs_number()))), prefer="return=OperationOutcome")
    entry = r.json()["entry"][0]
    assert "resource" not in entry
    assert entry["response"]["outcome"]["resourceType"] == "OperationOutcome"


# -- Bundle-level checks -------------------------------------------------------------------------------------------


async def test_other_bundle_types_are_refused(client: httpx.AsyncClient) -> None:
    r = await send(client, bundle("collection", post(patient(nhs_number()))))
    assert r.status_code == 400
    assert expressions(r.json()) == {"Bundle.type"}
    r = await send(client, patient(nhs_number()))
    assert r.status_code == 400
    assert expressions(r.json()) == {"Bundle.resourceType"}


async def test_patch_entries_are_refused_clearly(client: httpx.AsyncClient) -> None:
    r = await send(client, bundle("batch", request("PATCH", "Patient/x")))
    entry = r.json()["entry"][0]
    assert entry["response"]["status"] == "405 Method Not Allowed"
    assert expressions(entry["response"]["outcome"]) == {"Bundle.entry[0].request.method"}


async def test_an_empty_bundle_answers_an_empty_response(client: httpx.AsyncClient) -> None:
    r = await send(client, {"resourceType": "Bundle", "type": "transaction"})
    assert r.status_code == 200
    assert r.json()["type"] == "transaction-response" and r.json()["entry"] == []


# -- batches -------------------------------------------------------------------------------------------------------


async def test_batch_entry_failures_leave_the_others_committed(client: httpx.AsyncClient) -> None:
    good, bad, other = nhs_number(), nhs_number(), nhs_number()
    invalid = patient(bad)
    invalid["birthDate"] = "2012-13-45"
    body = bundle(
        "batch",
        post(patient(good)),
        post(invalid),
        request("PUT", "Patient/batch-put-1", {**patient(other), "id": "batch-put-1"}),
        request("GET", "Patient/never-was"),
    )
    r = await send(client, body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "batch-response"
    statuses = [x["response"]["status"] for x in out["entry"]]
    assert statuses == ["201 Created", "400 Bad Request", "201 Created", "404 Not Found"]
    assert expressions(out["entry"][1]["response"]["outcome"]) == {"Bundle.entry[1].resource.birthDate"}
    assert await count(client, "Patient", ("identifier", f"{NHS}|{good}")) == 1
    assert await count(client, "Patient", ("identifier", f"{NHS}|{bad}")) == 0
    assert (await client.get("/fhir/Patient/batch-put-1")).status_code == 200


async def test_batch_get_entries_read_vread_and_search(client: httpx.AsyncClient) -> None:
    nhs = nhs_number()
    created = (await client.post("/fhir/Patient", json=patient(nhs), headers=JSON)).json()
    rid = created["id"]
    await client.put(f"/fhir/Patient/{rid}", json={**created, "gender": "other"}, headers=JSON)
    body = bundle(
        "batch",
        request("GET", f"Patient/{rid}"),
        request("GET", f"Patient/{rid}/_history/1"),
        request("GET", f"Patient?identifier={NHS}|{nhs}"),
        request("GET", "http://gateway.test/fhir/Patient/" + rid),
        request("GET", "Patient?no-such-parameter=1"),
    )
    r = await send(client, body)
    read, vread, search, absolute, bad = r.json()["entry"]
    assert read["response"]["status"] == "200 OK" and read["resource"]["gender"] == "other"
    assert read["response"]["etag"] == 'W/"2"'
    assert vread["resource"]["meta"]["versionId"] == "1" and "gender" not in vread["resource"]
    assert [x["resource"]["id"] for x in search["resource"]["entry"]] == [rid]
    assert absolute["resource"]["id"] == rid
    assert bad["response"]["status"] == "400 Bad Request"


async def test_batch_entries_may_not_refer_to_each_other(client: httpx.AsyncClient) -> None:
    p = urn()
    nhs = nhs_number()
    r = await send(client, bundle("batch", post(patient(nhs), p), post(episode(p))))
    first, second = r.json()["entry"]
    assert first["response"]["status"] == "201 Created"
    assert second["response"]["status"] == "400 Bad Request"
    assert expressions(second["response"]["outcome"]) == {"Bundle.entry[1].resource.patient.reference"}
    assert await count(client, "Patient", ("identifier", f"{NHS}|{nhs}")) == 1


async def test_batch_conditional_create_and_stale_if_match(client: httpx.AsyncClient) -> None:
    nhs = nhs_number()
    existing = (await client.post("/fhir/Patient", json=patient(nhs), headers=JSON)).json()
    body = bundle(
        "batch",
        post(patient(nhs), if_none_exist=f"identifier={NHS}|{nhs}"),
        request("PUT", f"Patient/{existing['id']}", existing, ifMatch='W/"7"'),
    )
    first, second = (await send(client, body)).json()["entry"]
    assert first["response"]["status"] == "200 OK" and ref_of(first) == f"Patient/{existing['id']}"
    assert second["response"]["status"] == "412 Precondition Failed"


# -- property: any reference graph among placeholders is fully resolved ---------------------------------------


def _ref_extension(reference: str) -> Json:
    return {"url": "https://example.org/related", "valueReference": {"reference": reference}}


_GRAPHS = st.integers(min_value=1, max_value=7).flatmap(
    lambda n: st.tuples(
        st.lists(st.sampled_from(["Patient", "Organization", "Practitioner"]), min_size=n, max_size=n),
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n),
        st.permutations(list(range(n))),
    )
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(graph=_GRAPHS)
async def test_any_reference_graph_among_placeholders_is_rewritten(
    client: httpx.AsyncClient, graph: tuple[list[str], list[tuple[int, int]], list[int]]
) -> None:
    types, edges, order = graph
    urns = [urn() for _ in types]
    resources: list[Json] = [{"resourceType": t, "extension": []} for t in types]
    for source, target in edges:
        resources[source]["extension"].append(_ref_extension(urns[target]))
    for res in resources:
        if not res["extension"]:
            del res["extension"]
    r = await send(client, bundle("transaction", *[post(resources[i], urns[i]) for i in order]))
    assert r.status_code == 200, r.text
    out = r.json()["entry"]
    created = {position: ref_of(out[k]) for k, position in enumerate(order)}
    assert len(set(created.values())) == len(types)
    for k, position in enumerate(order):
        stored = await read_location(client, out[k])
        refs = [x["valueReference"]["reference"] for x in stored.get("extension", [])]
        wanted = [created[target] for source, target in edges if source == position]
        assert refs == wanted
        for ref in refs:  # none dangles: every target can be read
            assert (await client.get(f"/fhir/{ref}")).status_code == 200


async def test_conditional_entries_resolve_through_each_others_placeholders(client: httpx.AsyncClient) -> None:
    nhs = nhs_number()
    pid = (await client.post("/fhir/Patient", json=patient(nhs), headers=JSON)).json()["id"]
    eid = (await client.post("/fhir/EpisodeOfCare", json=episode(f"Patient/{pid}"), headers=JSON)).json()["id"]
    p, e = urn(), urn()
    body = bundle(
        "transaction",
        post(encounter(p, e), urn()),
        # the episode's criteria name the patient entry, which is itself conditional: resolved in rounds
        post(episode(p), e, if_none_exist=f"EpisodeOfCare?patient={p}&status=active"),
        post(patient(nhs), p, if_none_exist=f"identifier={NHS}|{nhs}"),
    )
    r = await send(client, body)
    assert r.status_code == 200, r.text
    enc, ep, pat = r.json()["entry"]
    assert (ep["response"]["status"], pat["response"]["status"]) == ("200 OK", "200 OK")
    stored = await read_location(client, enc)
    assert stored["subject"]["reference"] == f"Patient/{pid}"
    assert stored["episodeOfCare"][0]["reference"] == f"EpisodeOfCare/{eid}"
    assert await count(client, "EpisodeOfCare", ("patient", f"Patient/{pid}")) == 1


async def test_conditional_entries_naming_each_other_in_a_cycle_are_refused(client: httpx.AsyncClient) -> None:
    a, b = urn(), urn()
    body = bundle(
        "transaction",
        post(episode("Patient/x"), a, if_none_exist=f"EpisodeOfCare?patient={b}"),
        post(episode("Patient/y"), b, if_none_exist=f"EpisodeOfCare?patient={a}"),
    )
    r = await send(client, body)
    assert r.status_code == 400
    assert expressions(r.json()) == {"Bundle.entry[0].request", "Bundle.entry[1].request"}


async def test_a_conditional_create_matching_several_fails_the_transaction(client: httpx.AsyncClient) -> None:
    nhs = nhs_number()
    for _ in range(2):
        await client.post("/fhir/Patient", json=patient(nhs), headers=JSON)
    newcomer = nhs_number()
    body = bundle("transaction", post(patient(newcomer)), post(patient(nhs), if_none_exist=f"identifier={NHS}|{nhs}"))
    r = await send(client, body)
    assert r.status_code == 412
    assert "Bundle.entry[1]" in expressions(r.json())
    assert await count(client, "Patient", ("identifier", f"{NHS}|{newcomer}")) == 0


async def test_a_put_whose_body_names_another_id_fails_naming_the_entry(client: httpx.AsyncClient) -> None:
    body = bundle(
        "transaction",
        post(patient(nhs_number())),
        request("PUT", "Patient/url-id", {**patient(nhs_number()), "id": "body-id"}),
    )
    r = await send(client, body)
    assert r.status_code == 400
    assert expressions(r.json()) == {"Bundle.entry[1].resource.id"}
    assert (await client.get("/fhir/Patient/url-id")).status_code == 404


async def test_references_to_a_conditional_update_resolve_to_the_matched_resource(client: httpx.AsyncClient) -> None:
    nhs = nhs_number()
    pid = (await client.post("/fhir/Patient", json=patient(nhs), headers=JSON)).json()["id"]
    p = urn()
    put = request("PUT", f"Patient?identifier={NHS}|{nhs}", patient(nhs, family="Renamed"))
    put["fullUrl"] = p
    r = await send(client, bundle("transaction", post(episode(p)), put))
    assert r.status_code == 200, r.text
    ep, updated = r.json()["entry"]
    assert updated["response"]["location"] == f"Patient/{pid}/_history/2"
    assert (await read_location(client, ep))["patient"]["reference"] == f"Patient/{pid}"


async def test_batch_conditional_update_and_deletes(client: httpx.AsyncClient) -> None:
    kept, gone = nhs_number(), nhs_number()
    kept_id = (await client.post("/fhir/Patient", json=patient(kept), headers=JSON)).json()["id"]
    gone_id = (await client.post("/fhir/Patient", json=patient(gone), headers=JSON)).json()["id"]
    other_id = (await client.post("/fhir/Patient", json=patient(nhs_number()), headers=JSON)).json()["id"]
    body = bundle(
        "batch",
        request("PUT", f"Patient?identifier={NHS}|{kept}", patient(kept, family="Batched")),
        request("DELETE", f"Patient?identifier={NHS}|{gone}"),
        request("DELETE", f"Patient/{other_id}", ifMatch='W/"2"'),
        request("DELETE", f"Patient/{other_id}", ifMatch='W/"1"'),
    )
    r = await send(client, body)
    statuses = [x["response"]["status"] for x in r.json()["entry"]]
    assert statuses == ["200 OK", "204 No Content", "412 Precondition Failed", "204 No Content"]
    assert (await client.get(f"/fhir/Patient/{kept_id}")).json()["name"][0]["family"] == "Batched"
    assert (await client.get(f"/fhir/Patient/{gone_id}")).status_code == 410
    assert (await client.get(f"/fhir/Patient/{other_id}")).status_code == 410
