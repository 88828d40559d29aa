"""Destinations through the API: ``POST/PUT/DELETE /admin/destinations``.

In process (SQLite and PostgreSQL): bad bodies are 422 naming the field, secrets are refused, a taken name or a
file destination is 409, every change is audited, and removing a destination dead-letters its pending deliveries.
With real processes: a destination made through the API receives a change without any restart, and after its
removal it receives nothing new.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.app import create_app
from gateway.auth import Caller
from gateway.errors import UnprocessableRecord
from gateway.settings import Settings
from gateway.store.repository import SqlFhirRepository
from gateway.sync.destination_store import parse_body
from gateway.sync.directory import Directory
from gateway.sync.managed_tables import sync_destination
from gateway.sync.relay import relay_once
from tests.processes import KWG, running_gateway
from tests.servers import _free_port, _wait_port
from tests.sync.test_processes import process

FILE = """
[[destination]]
name = "from-file"
connector = "fhir"
endpoint = "http://destination.test/fhir"
recipient = "nhs-provider"
"""


def body(name: str = "ics-record", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "connector": "fhir",
        "endpoint": "http://destination.test/fhir",
        "recipient": "local-authority",
        **extra,
    }


class AuditSpy:
    def __init__(self) -> None:
        self.entries: list[tuple[str, tuple[str, ...], str | None]] = []

    def interaction(self, caller: Caller, interaction: str, *_: Any, **kw: Any) -> None:
        self.entries.append((interaction, kw.get("references", ()), kw.get("description")))


@pytest.fixture
async def api(
    sync_engine: AsyncEngine, sync_db_url: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, AuditSpy]]:
    async with sync_engine.begin() as conn:
        await conn.execute(delete(sync_destination))
    (tmp_path / "destinations.toml").write_text(FILE)
    settings = Settings(home=tmp_path, database_url=sync_db_url, destinations_file=tmp_path / "destinations.toml")  # type: ignore[arg-type]
    app = create_app(settings)
    spy = AuditSpy()
    app.state.audit = spy
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as client:
        yield client, spy
    await app.state.engine.dispose()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoint": "not a url"}, "endpoint"),
        ({"recipient": "everyone"}, "recipient"),
        ({"lanes": 0}, "lanes"),
        ({"bearer_token": "s3cret"}, "bearer_token"),  # a secret field: not part of the model
        ({"options": {"api_token": "s3cret"}}, "options.api_token"),
        ({"options": {"auth": {"password": "s3cret"}}}, "options.auth.password"),
        ({"connector": "carrier-pigeon"}, "connector"),
        ({"connector": "rest-hook"}, "connector"),
        ({"name": "subscription-mine"}, "name"),
        ({"name": "Not Valid"}, "name"),
        ({"bearer_token_env": "KWG_TEST_UNSET_VARIABLE_XYZ"}, "bearer_token_env"),
    ],
)
async def test_a_bad_body_is_422_naming_the_field(
    api: tuple[httpx.AsyncClient, AuditSpy], change: dict[str, Any], field: str
) -> None:
    client, spy = api
    answer = await client.post("/admin/destinations", json=body(**change))
    assert answer.status_code == 422, answer.text
    assert field in answer.json()["issue"][0]["expression"]
    assert spy.entries == []
    assert (await client.get("/admin/destinations")).json()["items"][-1]["name"] == "from-file"


async def test_not_json_is_422(api: tuple[httpx.AsyncClient, AuditSpy]) -> None:
    client, _ = api
    answer = await client.post("/admin/destinations", content=b"{nope")
    assert answer.status_code == 422
    assert (await client.post("/admin/destinations", json=[1])).status_code == 422


async def test_add_replace_remove_with_conflicts_and_audit(
    api: tuple[httpx.AsyncClient, AuditSpy], sync_engine: AsyncEngine, tmp_path: Path
) -> None:
    client, spy = api
    added = await client.post("/admin/destinations", json=body(bearer_token_env="PATH"))
    assert added.status_code == 201 and added.json()["bearer_token_env"] == "PATH"
    assert (await client.post("/admin/destinations", json=body())).status_code == 409  # taken
    assert (await client.post("/admin/destinations", json=body("from-file"))).status_code == 409  # the file's
    assert (await client.put("/admin/destinations/from-file", json=body("from-file"))).status_code == 409
    assert (await client.delete("/admin/destinations/from-file")).status_code == 409
    assert (await client.put("/admin/destinations/ics-record", json=body("other"))).status_code == 422
    replaced = await client.put("/admin/destinations/ics-record", json={**body(), "lanes": 2})
    assert replaced.status_code == 200 and replaced.json()["lanes"] == 2
    listed = {d["name"]: d for d in (await client.get("/admin/destinations")).json()["items"]}
    assert (listed["from-file"]["source"], listed["ics-record"]["source"]) == ("file", "api")

    # A pending delivery to it, then its removal: the delivery becomes a dead letter.
    settings = Settings(home=tmp_path, database_url=str(sync_engine.url))  # type: ignore[arg-type]
    directory = Directory(sync_engine, settings, ())
    repo = SqlFhirRepository(sync_engine)
    await repo.update("Patient", "removed-1", {"resourceType": "Patient", "id": "removed-1"})
    report = await relay_once(sync_engine, (await directory.current()).all)
    assert report.deliveries == 1
    removed = await client.delete("/admin/destinations/ics-record")
    assert removed.status_code == 200 and removed.json() == {"removed": "ics-record", "dead_lettered": 1}
    [dead] = (await client.get("/admin/deliveries", params={"status": "dead"})).json()["items"]
    assert (dead["destination"], dead["last_error"]) == ("ics-record", "destination removed")
    assert (await client.delete("/admin/destinations/ics-record")).status_code == 404
    snapshot = await directory.current()
    assert "ics-record" not in snapshot.destinations and "ics-record" in snapshot.removed
    # Added again under the same name after removal: a new destination.
    assert (await client.put("/admin/destinations/ics-record", json=body())).status_code == 201
    assert "ics-record" in (await directory.current()).destinations
    assert [(i, refs) for i, refs, _ in spy.entries] == [
        ("create", ("destination/ics-record",)),
        ("update", ("destination/ics-record",)),
        ("delete", ("destination/ics-record",)),
        ("create", ("destination/ics-record",)),
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=12), st.one_of(st.none(), st.integers(), st.text(max_size=20)), max_size=6))
def test_any_body_is_a_destination_or_a_422(extra: dict[str, Any]) -> None:
    try:
        destination = parse_body({**body(), **extra})
    except UnprocessableRecord as exc:
        assert exc.issues and all(i.expression for i in exc.issues)
    else:
        assert destination.name and not destination.name.startswith("subscription-")


# -- real processes -----------------------------------------------------------------------------------------------


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def fake_fhir(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    with process([sys.executable, "-m", "connectors.fake.fhir_server", "--port", str(port)], {}, tmp_path / "d.log"):
        assert _wait_port(port)
        yield f"http://127.0.0.1:{port}"


def test_an_api_made_destination_receives_changes_without_a_restart(fake_fhir: str) -> None:
    env = {"KWG_LOG_LEVEL": "WARNING", "KWG_SWEEP_INTERVAL": "1"}
    with running_gateway(env=env) as gateway, httpx.Client(timeout=30) as client:
        base = gateway.url.removesuffix("/fhir")
        headers = {"Content-Type": "application/fhir+json"}

        def write(pid: str) -> None:
            patient = {"resourceType": "Patient", "id": pid, "name": [{"family": pid}]}
            assert client.put(f"{gateway.url}/Patient/{pid}", json=patient, headers=headers).status_code == 201

        def arrived() -> list[str]:
            return [c["url"] for c in httpx.get(f"{fake_fhir}/_log", timeout=10).json()["changes"]]

        made = {"name": "made-live", "connector": "fhir", "endpoint": f"{fake_fhir}/fhir", "recipient": "nhs-provider"}
        assert client.post(f"{base}/admin/destinations", json=made).status_code == 201
        write("after")
        wait_for(lambda: "Patient/after" in arrived(), "the change at the API-made destination")
        assert arrived() == ["Patient/after"]

        assert client.delete(f"{base}/admin/destinations/made-live").status_code == 200
        write("gone")
        # The relay works in outbox order: once a later change is relayed, "gone" was judged; it got no delivery.
        made_later = {**made, "name": "made-later"}
        assert client.post(f"{base}/admin/destinations", json=made_later).status_code == 201
        write("later")
        wait_for(lambda: arrived().count("Patient/later") == 1, "the change at the second destination")
        to_removed = client.get(f"{base}/admin/deliveries", params={"destination": "made-live"}).json()["items"]
        assert [d["resource"] for d in to_removed] == ["Patient/after"]  # nothing new to the removed destination


async def test_kwg_destinations_add_list_remove(sync_engine: AsyncEngine, sync_db_url: str, tmp_path: Path) -> None:
    async with sync_engine.begin() as conn:
        await conn.execute(delete(sync_destination))
    (tmp_path / "destinations.toml").write_text(FILE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KWG_")}
    env |= {
        "KWG_HOME": str(tmp_path),
        "KWG_DATABASE_URL": sync_db_url,
        "KWG_DESTINATIONS_FILE": str(tmp_path / "destinations.toml"),
    }

    def kwg(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([KWG, "destinations", *args], env=env, capture_output=True, text=True, timeout=60)

    (tmp_path / "made.json").write_text(orjson.dumps(body("cli-made")).decode())
    (tmp_path / "secret.json").write_text(orjson.dumps(body("cli-bad", options={"token": "x"})).decode())
    (tmp_path / "clash.json").write_text(orjson.dumps(body("from-file")).decode())
    assert kwg("add", str(tmp_path / "made.json")).stdout.strip() == "added cli-made"
    refused = kwg("add", str(tmp_path / "secret.json"))
    assert refused.returncode == 2 and "options.token" in refused.stderr
    clash = kwg("add", str(tmp_path / "clash.json"))
    assert clash.returncode == 1 and "read-only" in clash.stderr
    listed = [line.split("\t")[:2] for line in kwg("list").stdout.splitlines()]
    assert listed == [["from-file", "file"], ["cli-made", "api"]]
    assert kwg("remove", "cli-made").stdout.startswith("removed cli-made")
    assert kwg("remove", "cli-made").returncode == 1
    assert [line.split("\t")[0] for line in kwg("list").stdout.splitlines()] == ["from-file"]
    repo = SqlFhirRepository(sync_engine)
    events = (await repo.search("AuditEvent", [("_count", "500")])).matches
    about = [e.as_dict() for e in events if b"destination/cli-made" in (e.content or b"")]
    assert sorted(e["action"] for e in about) == ["C", "D"]  # added, removed
