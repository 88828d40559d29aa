"""Domain writes through the app's own repository, committing, on SQLite and PostgreSQL.

The other API tests run on a repository bound to a rolled-back transaction, where every write is a nested scope
with savepoints. Here the app writes as it does in production: a record and its person are read in one
statement, the write and the register rules share one transaction scope without savepoints, and SQLite begins
it in one call on its driver thread. What must hold: what a write answers is what is stored; a refusal by the
rules, a stale If-Match or a missing person writes nothing at all.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest

from gateway.app import create_app
from gateway.settings import Settings
from gateway.store.migrate import upgrade
from gateway.store.timeutil import to_instant
from tests.api.test_access_matrix import ICB, act_as
from tests.api.test_domain_api import API, record
from tests.conftest import _POSTGRES, DIALECTS
from tests.processes import scratch_postgres_database

AUTHOR = {"name": "Dr Priya Shah", "reference": "Practitioner/priya-shah"}


@pytest.fixture(scope="module", params=DIALECTS)
def committed_url(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """A migrated database of this module's own (home, url): the writes here commit."""
    home = tempfile.mkdtemp(prefix="kwg-committed-")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{home}/committed.db"
        upgrade(Settings(home=home, database_url=url, auth="off"), url=url)
        yield home, url
        return
    if _POSTGRES.url is None:
        pytest.skip(f"PostgreSQL tests not run: {_POSTGRES.reason}")
    with scratch_postgres_database(_POSTGRES.url) as url:
        upgrade(Settings(home=home, database_url=url, auth="off"), url=url)
        yield home, url


@pytest.fixture
async def client(committed_url: tuple[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    home, url = committed_url
    app = create_app(Settings(home=home, database_url=url, auth="off"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
        yield c
    await app.state.engine.dispose()


async def person_with_entry(client: httpx.AsyncClient) -> tuple[str, str]:
    """A new person with an unrated register entry: (person id, entry id), unique to the test."""
    suffix = uuid.uuid4().hex[:8]
    person, entry = f"yp-{suffix}", f"dsr-{suffix}"
    assert (await client.put(f"{API}/people/{person}", json=record("person", id=person))).status_code == 201
    body = {**record("register-entry"), "id": entry, "person_id": person, "ratings": []}
    assert (await client.put(f"{API}/register-entries/{entry}", json=body)).status_code == 201
    return person, entry


async def rate(client: httpx.AsyncClient, entry: str, rating: str, at: str, review: str) -> httpx.Response:
    change = {"rating": rating, "reason": f"now {rating}", "author": AUTHOR, "at": at, "next_review": review}
    return await client.post(f"{API}/register-entries/{entry}/ratings", json=change)


async def tasks(client: httpx.AsyncClient, person: str) -> list[dict[str, Any]]:
    response = await client.get(f"{API}/tasks", params={"person_id": person})
    assert response.status_code == 200, response.text
    return sorted(response.json()["items"], key=lambda t: (str(t["task_type"]), str(t["due"])))


async def test_a_rated_entry_and_its_rule_tasks_commit_together(client: httpx.AsyncClient) -> None:
    person, entry = await person_with_entry(client)
    assert (await rate(client, entry, "red", "2026-12-01T10:00:00+00:00", "2026-12-08")).status_code == 200
    assert [t["task_type"] for t in await tasks(client, person)] == ["offer-community-cetr"]
    assert (await rate(client, entry, "blue", "2026-12-23T15:00:00+00:00", "2027-01-06")).status_code == 200
    found = {t["task_type"]: (t["due"], t["status"]) for t in await tasks(client, person)}
    assert found["post-admission-cetr"] == ("2027-01-11", "requested")
    assert found["offer-community-cetr"][1] == "cancelled"
    stored = (await client.get(f"{API}/register-entries/{entry}")).json()
    assert [r["rating"] for r in stored["ratings"]] == ["red", "blue"]
    history = (await client.get(f"/fhir/EpisodeOfCare/{entry}/_history")).json()
    assert history["total"] == 3  # created, then one version per rating: one write each


async def test_a_refusal_by_the_rules_writes_nothing(client: httpx.AsyncClient) -> None:
    """The record's resources are written before the rules refuse: the whole scope must roll back."""
    person, entry = await person_with_entry(client)
    await rate(client, entry, "blue", "2026-11-02T09:00:00+00:00", "2026-11-16")
    assert (await rate(client, entry, "red", "2026-11-20T09:00:00+00:00", "2026-11-27")).status_code == 200
    before_tasks = await tasks(client, person)
    before = await client.get(f"{API}/register-entries/{entry}")
    refused = await rate(client, entry, "green", "2026-11-25T09:00:00+00:00", "2026-12-25")
    assert refused.status_code == 409, refused.text
    after = await client.get(f"{API}/register-entries/{entry}")
    assert after.json() == before.json() and after.headers["etag"] == before.headers["etag"]
    assert await tasks(client, person) == before_tasks
    observations = (await client.get("/fhir/Observation", params={"subject": f"Patient/{person}"})).json()
    assert len(observations.get("entry", [])) == 2  # no third rating Observation left behind
    assert (await rate(client, entry, "green", "2026-12-05T09:00:00+00:00", "2027-01-05")).status_code == 200


async def test_a_stale_if_match_writes_nothing(client: httpx.AsyncClient) -> None:
    person, entry = await person_with_entry(client)
    current = await client.get(f"{API}/register-entries/{entry}")
    changed = {**current.json(), "referred_on": "2025-01-09"}
    stale = await client.put(f"{API}/register-entries/{entry}", json=changed, headers={"If-Match": 'W/"9"'})
    assert stale.status_code == 412, stale.text
    assert (await client.get(f"{API}/register-entries/{entry}")).json() == current.json()
    fresh = await client.put(
        f"{API}/register-entries/{entry}", json=changed, headers={"If-Match": current.headers["etag"]}
    )
    assert fresh.status_code == 200, fresh.text
    assert (await client.get(f"{API}/register-entries/{entry}")).json()["referred_on"] == "2025-01-09"
    assert person


async def test_a_record_naming_no_person_is_refused_and_not_stored(client: httpx.AsyncClient) -> None:
    entry = f"dsr-{uuid.uuid4().hex[:8]}"
    body = {**record("register-entry"), "id": entry, "person_id": f"yp-nobody-{entry}"}
    refused = await client.put(f"{API}/register-entries/{entry}", json=body)
    assert refused.status_code == 422, refused.text
    assert "create the person first" in refused.text
    assert (await client.get(f"{API}/register-entries/{entry}")).status_code == 404


async def test_a_clients_writes_commit_with_their_provenance_and_a_refusal_with_none(
    client: httpx.AsyncClient,
) -> None:
    """Committed for real (no savepoints): each write's Provenance names the versions it stored, in one statement
    plan with them; what the rules refuse leaves no Provenance behind."""
    act_as(client, ICB)
    person, entry = await person_with_entry(client)
    await rate(client, entry, "blue", "2026-11-02T09:00:00+00:00", "2026-11-16")
    assert (await rate(client, entry, "red", "2026-11-20T09:00:00+00:00", "2026-11-27")).status_code == 200
    assert (await rate(client, entry, "green", "2026-11-25T09:00:00+00:00", "2026-12-25")).status_code == 409
    repo = client._transport.app.state.repository  # type: ignore[attr-defined]
    found = await repo.search("Provenance", [("target", f"EpisodeOfCare/{entry}"), ("_sort", "_lastUpdated")])
    written = [orjson.loads(r.content) for r in found.matches]
    assert [p["activity"]["coding"][0]["code"] for p in written] == ["CREATE", "UPDATE", "UPDATE"]
    assert all(p["agent"][0]["who"]["identifier"]["value"] == "icb-register" for p in written)
    episode_versions = [
        int(t["reference"].rsplit("/", 1)[1])
        for p in written
        for t in p["target"]
        if "EpisodeOfCare/" in t["reference"]
    ]
    assert episode_versions == [1, 2, 3] == list(range(1, (await repo.read("EpisodeOfCare", entry)).version_id + 1))
    for provenance in written:
        for target in provenance["target"]:
            res_type, res_id, _, version = target["reference"].split("/")
            stored = await repo.vread(res_type, res_id, int(version))
            assert to_instant(stored.last_updated) == provenance["meta"]["lastUpdated"]  # the same plan
    assert len((await repo.search("Provenance", [("target", f"Patient/{person}")])).matches) == 1
