"""Search over HTTP on both databases: Bundles, links, includes, subsetting, errors and lenient handling."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

NHS = "https://fhir.nhs.uk/Id/nhs-number"
FHIR_JSON = {"content-type": "application/fhir+json"}


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await client.post(f"/fhir/{body['resourceType']}", json=body, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def seed(client: httpx.AsyncClient) -> dict[str, str]:
    patient = await post(
        client,
        {
            "resourceType": "Patient",
            "identifier": [{"system": NHS, "value": "9000000009"}],
            "name": [{"family": "Ålvarez", "given": ["Zoë"]}],
            "birthDate": "2012-04-01",
            "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Zoë</div>'},
        },
    )
    keyworker = await post(client, {"resourceType": "Practitioner", "name": [{"family": "Keyworker"}]})
    episode = await post(
        client,
        {
            "resourceType": "EpisodeOfCare",
            "status": "active",
            "patient": {"reference": f"Patient/{patient}"},
            "careManager": {"reference": f"Practitioner/{keyworker}"},
        },
    )
    for day in range(1, 6):
        await post(
            client,
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"code": "HH"},
                "subject": {"reference": f"Patient/{patient}"},
                "period": {"start": f"2024-03-0{day}T10:00:00Z", "end": f"2024-03-0{day}T11:00:00Z"},
            },
        )
    return {"patient": patient, "keyworker": keyworker, "episode": episode}


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_searchset_with_include(client: httpx.AsyncClient) -> None:
    ids = await seed(client)
    response = await client.get(
        "/fhir/EpisodeOfCare",
        params={"patient": ids["patient"], "status": "active", "_include": "EpisodeOfCare:care-manager"},
    )
    assert response.status_code == 200
    bundle = response.json()
    assert bundle["type"] == "searchset" and bundle["total"] == 1
    modes = [(e["resource"]["resourceType"], e["search"]["mode"]) for e in bundle["entry"]]
    assert modes == [("EpisodeOfCare", "match"), ("Practitioner", "include")]
    assert bundle["entry"][1]["fullUrl"].endswith(f"/fhir/Practitioner/{ids['keyworker']}")


async def test_chain_by_identifier(client: httpx.AsyncClient) -> None:
    ids = await seed(client)
    response = await client.get("/fhir/EpisodeOfCare", params={"patient.identifier": f"{NHS}|9000000009"})
    assert [e["resource"]["id"] for e in response.json()["entry"]] == [ids["episode"]]


async def test_next_and_previous_links_walk_the_pages(client: httpx.AsyncClient) -> None:
    ids = await seed(client)
    url: str | None = f"/fhir/Encounter?patient={ids['patient']}&_sort=-date&_count=2"
    dates: list[str] = []
    pages = 0
    last: dict[str, Any] = {}
    while url:
        bundle = (await client.get(url)).json()
        assert bundle["total"] == 5
        dates += [e["resource"]["period"]["start"] for e in bundle.get("entry", [])]
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        url = path_of(links["next"]) if "next" in links else None
        pages += 1
        last = links
    assert pages == 3
    assert dates == sorted(dates, reverse=True) and len(set(dates)) == 5
    back = (await client.get(path_of(last["previous"]))).json()
    assert len(back["entry"]) == 2


async def test_summary_count_has_no_entries(client: httpx.AsyncClient) -> None:
    await seed(client)
    bundle = (await client.get("/fhir/Encounter", params={"_summary": "count"})).json()
    assert bundle["total"] == 5 and "entry" not in bundle


async def test_elements_subsets_and_tags(client: httpx.AsyncClient) -> None:
    await seed(client)
    bundle = (await client.get("/fhir/Patient", params={"_elements": "birthDate"})).json()
    resource = bundle["entry"][0]["resource"]
    assert set(resource) == {"resourceType", "id", "meta", "birthDate"}
    assert {"code": "SUBSETTED", "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"} in resource[
        "meta"
    ]["tag"]


async def test_summary_true_drops_non_summary_elements(client: httpx.AsyncClient) -> None:
    await seed(client)
    resource = (await client.get("/fhir/Patient", params={"_summary": "true"})).json()["entry"][0]["resource"]
    assert "text" not in resource and "name" in resource and "birthDate" in resource
    data = (await client.get("/fhir/Patient", params={"_summary": "data"})).json()["entry"][0]["resource"]
    assert "text" not in data and "name" in data


async def test_unknown_parameter_is_400_unless_lenient(client: httpx.AsyncClient) -> None:
    await seed(client)
    strict = await client.get("/fhir/Patient", params={"favourite-colour": "blue"})
    assert strict.status_code == 400
    outcome = strict.json()
    assert outcome["resourceType"] == "OperationOutcome" and "favourite-colour" in outcome["issue"][0]["diagnostics"]
    lenient = await client.get(
        "/fhir/Patient", params={"favourite-colour": "blue"}, headers={"Prefer": "handling=lenient"}
    )
    assert lenient.status_code == 200 and lenient.json()["total"] == 1
    self_link = next(link["url"] for link in lenient.json()["link"] if link["relation"] == "self")
    assert "favourite-colour" not in self_link


async def test_post_search_equals_get(client: httpx.AsyncClient) -> None:
    ids = await seed(client)
    form = {"patient": ids["patient"], "date": "ge2024-03-03"}
    by_post = await client.post("/fhir/Encounter/_search", data=form)
    by_get = await client.get("/fhir/Encounter", params=form)
    assert by_post.status_code == 200
    assert [e["resource"]["id"] for e in by_post.json()["entry"]] == [
        e["resource"]["id"] for e in by_get.json()["entry"]
    ]
    assert by_get.json()["total"] == 3


async def test_capability_statement_lists_search_features(client: httpx.AsyncClient) -> None:
    statement = (await client.get("/fhir/metadata")).json()
    episode = next(r for r in statement["rest"][0]["resource"] if r["type"] == "EpisodeOfCare")
    names = {p["name"] for p in episode["searchParam"]}
    assert {"patient", "status", "care-manager", "date", "identifier", "_lastUpdated"} <= names
    assert "EpisodeOfCare:care-manager" in episode["searchInclude"]
    assert "Encounter:episode-of-care" in episode["searchRevInclude"]
