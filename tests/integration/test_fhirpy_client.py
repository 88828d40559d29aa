"""A real FHIR client library (fhirpy) against a real ``kwg serve`` process, on SQLite and on PostgreSQL.

What an EHR integration does: create a young person, their keyworker and the keyworking episode; search the
episode with the keyworker included; update with a stale ETag (refused with 412); post a transaction Bundle
whose entries refer to each other by urn:uuid.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from fhirpy import AsyncFHIRClient
from fhirpy.base.exceptions import MultipleResourcesFound

from tests.processes import RunningGateway, running_gateway, scratch_postgres_database
from tests.servers import find_postgres

pytestmark = pytest.mark.integration

NHS = "https://fhir.nhs.uk/Id/nhs-number"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gateway(request: pytest.FixtureRequest) -> Iterator[RunningGateway]:
    if request.param == "sqlite":
        with running_gateway() as running:
            yield running
        return
    postgres = find_postgres()
    if postgres.url is None:
        pytest.skip(f"PostgreSQL tests not run: {postgres.reason}")
    with scratch_postgres_database(postgres.url) as url, running_gateway(url) as running:
        yield running


def _client(gateway: RunningGateway, **headers: str) -> AsyncFHIRClient:
    return AsyncFHIRClient(gateway.url, extra_headers={"Accept": "application/fhir+json", **headers})


async def test_create_search_with_include_and_stale_update(gateway: RunningGateway) -> None:
    client = _client(gateway)
    nhs = f"9{uuid.uuid4().int % 10**9:09d}"
    patient = client.resource("Patient", identifier=[{"system": NHS, "value": nhs}], name=[{"family": "Fhirpy"}])
    await patient.save()
    keyworker = client.resource("Practitioner", name=[{"family": "Keyworker", "given": ["Kai"]}])
    await keyworker.save()
    episode = client.resource(
        "EpisodeOfCare",
        status="active",
        patient=patient.to_reference(),
        careManager=keyworker.to_reference(),
    )
    await episode.save()
    assert patient.id and keyworker.id and episode.id

    found = await (
        client.resources("EpisodeOfCare")
        .search(patient=patient.id, status="active")
        .include("EpisodeOfCare", "care-manager")
        .fetch_raw()
    )
    kinds = [(e["resource"]["resourceType"], e["resource"]["id"], e["search"]["mode"]) for e in found["entry"]]
    assert kinds == [("EpisodeOfCare", episode.id, "match"), ("Practitioner", keyworker.id, "include")]

    by_identifier = await client.resources("Patient").search(identifier=f"{NHS}|{nhs}").fetch()
    assert [p.id for p in by_identifier] == [patient.id]
    chained = await client.resources("EpisodeOfCare").search(**{"patient.identifier": f"{NHS}|{nhs}"}).fetch()
    assert [e.id for e in chained] == [episode.id]

    # Version 1 is current: an update claiming it succeeds and makes version 2; the same claim again is stale.
    episode["status"] = "onhold"
    await _client(gateway, **{"If-Match": 'W/"1"'}).resource("EpisodeOfCare", **episode.serialize()).save()
    stale = _client(gateway, **{"If-Match": 'W/"1"'}).resource("EpisodeOfCare", **{**episode.serialize()})
    stale["status"] = "finished"
    with pytest.raises(MultipleResourcesFound) as refused:  # fhirpy's name for a 412 answer
        await stale.save()
    assert "If-Match version 1 is stale" in str(refused.value)
    current = await client.resources("EpisodeOfCare").search(_id=episode.id).get()
    assert current["status"] == "onhold" and current["meta"]["versionId"] == "2"


async def test_transaction_bundle(gateway: RunningGateway) -> None:
    client = _client(gateway)
    patient_urn, episode_urn = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": episode_urn,
                "resource": {
                    "resourceType": "EpisodeOfCare",
                    "status": "active",
                    "patient": {"reference": patient_urn},
                },
                "request": {"method": "POST", "url": "EpisodeOfCare"},
            },
            {
                "fullUrl": patient_urn,
                "resource": {"resourceType": "Patient", "name": [{"family": "Transaction"}]},
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    response = await client.execute("", method="post", data=bundle)
    assert response["type"] == "transaction-response"
    episode_location, patient_location = (e["response"]["location"] for e in response["entry"])
    assert all(e["response"]["status"].startswith("201") for e in response["entry"])
    patient_id = patient_location.split("/")[1]
    episode = await client.resources("EpisodeOfCare").search(_id=episode_location.split("/")[1]).get()
    assert episode["patient"]["reference"] == f"Patient/{patient_id}"

    # A transaction with one invalid entry stores nothing at all.
    bad = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "name": [{"family": "Never"}]},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {"resourceType": "Patient", "birthDate": "not-a-date"},
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    raw = httpx.post(gateway.url, json=bad, headers={"Content-Type": "application/fhir+json"})
    assert raw.status_code == 400
    assert any("birthDate" in " ".join(i.get("expression", [])) for i in raw.json()["issue"])
    never = await client.resources("Patient").search(family="Never").fetch()
    assert never == []
