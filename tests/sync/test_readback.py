"""Recommendations owned by a local authority: their status is read back from the LA's API and recorded (forward
only), on both databases."""

from __future__ import annotations

import httpx
import orjson

from connectors.fake.local_authority_server import create_app as create_fake_la
from connectors.local_authority.config import LocalAuthorityConfig
from connectors.local_authority.connector import LocalAuthorityConnector
from gateway.origins import connector_origin
from gateway.store.repository import SqlFhirRepository
from gateway.sync.readback import read_back_recommendations
from tests.api.test_domain_api import API, record

MAPPING = {"record": "Task.id"}


async def test_la_statuses_are_read_back(client: httpx.AsyncClient, repo: SqlFhirRepository) -> None:
    assert (await client.put(f"{API}/people/yp-amira-khan", json=record("person"))).status_code == 201
    meeting = record("review-meeting")
    owned = [n for n, r in enumerate(meeting["recommendations"]) if "status" not in r or r["status"] == "accepted"]
    la = meeting["recommendations"][owned[0]]["owner_agency"]["ods_code"].upper()
    assert (await client.put(f"{API}/reviews/{meeting['id']}", json=meeting)).status_code == 201
    recommendations = (await client.get(f"{API}/recommendations", params={"owner_agency": la})).json()["items"]
    open_ones = [r for r in recommendations if r["status"] in ("requested", "accepted", "in-progress")]
    assert open_ones
    fake = httpx.ASGITransport(app=create_fake_la())
    async with httpx.AsyncClient(transport=fake, base_url="http://la.test") as la_api:
        await la_api.put(f"/_recommendations/{open_ones[0]['id']}", json={"status": "Done"})
        if len(open_ones) > 1:
            await la_api.put(f"/_recommendations/{open_ones[1]['id']}", json={"status": "not started"})  # backwards
    config = LocalAuthorityConfig.model_validate({"endpoint": "http://la.test/la", "mapping": MAPPING, "ods_code": la})
    connector = LocalAuthorityConnector(config, transport=fake)
    origin = connector_origin("la-case-system", "local-authority", "http://la.test/la", organisation=la)
    try:
        assert await read_back_recommendations(repo, connector, origin=origin) == 1
        assert await read_back_recommendations(repo, connector, origin=origin) == 0  # nothing new
    finally:
        await connector.aclose()
    # The update names the connector, for the local authority, and the Task version it wrote.
    task = open_ones[0]["id"]
    found = await repo.search("Provenance", [("target", f"Task/{task}")])
    [provenance] = [orjson.loads(r.content or b"{}") for r in found.matches]
    version = (await repo.read("Task", task)).version_id
    assert provenance["target"] == [{"reference": f"Task/{task}/_history/{version}"}]
    assert provenance["agent"][0]["who"]["identifier"]["value"] == "la-case-system"
    assert provenance["agent"][0]["onBehalfOf"]["identifier"]["value"] == la
    assert provenance["entity"][0]["what"]["identifier"]["value"] == "http://la.test/la"
    after = {
        r["id"]: r["status"]
        for r in (await client.get(f"{API}/recommendations", params={"owner_agency": la})).json()["items"]
    }
    assert after[open_ones[0]["id"]] == "completed"
    if len(open_ones) > 1:
        assert after[open_ones[1]["id"]] == open_ones[1]["status"]  # never moved backwards
