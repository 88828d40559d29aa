"""$export over the API on both databases, each job run as the worker runs it (``run_export``): kick-off, status,
manifest, download, ``_type``, ``_since``, Group, cancel, bad parameters, other clients and the access rules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import select, update

from gateway.auth import DEVELOPMENT_CALLER, Caller, current_caller
from gateway.export import jobs, reader
from gateway.export.requeue import requeue_stalled
from gateway.export.run import job_folder, run_export
from gateway.export.scope import Selection
from gateway.export.tables import export_job
from gateway.store.models import resource
from gateway.store.timeutil import now_us
from tests.export.conftest import ASYNC, group, observation, organization, patient, put

TRUST = Caller("trust-ehr", "RX4", "DIRECT_CARE", frozenset({"system/*.read"}), organisation_type="nhs-provider")
ICB = Caller("icb-register", "QX9", "ADMINISTRATION", frozenset({"system/*.read"}), organisation_type="icb")


def act_as(app: FastAPI, caller: Caller) -> None:
    async def override(request: Request) -> Caller:
        return caller

    app.dependency_overrides[current_caller] = override
    app.state.access.forget()


async def kick_off(api: httpx.AsyncClient, path: str = "/fhir/$export", **params: str) -> str:
    answer = await api.get(path, params=params, headers=ASYNC)
    assert answer.status_code == 202, answer.text
    location = answer.headers["content-location"]
    assert location.startswith("http://gateway.test/fhir/$export-status/")
    return location.removeprefix("http://gateway.test")


async def finished(app: FastAPI, api: httpx.AsyncClient, status_url: str) -> dict[str, Any]:
    waiting = await api.get(status_url)
    assert waiting.status_code == 202
    assert waiting.headers["x-progress"] and waiting.headers["retry-after"]
    job_id = status_url.rsplit("/", 1)[1]
    assert await run_export(app.state.engine, app.state.settings, job_id) == "done"
    done = await api.get(status_url)
    assert done.status_code == 200, done.text
    body: dict[str, Any] = done.json()
    return body


async def lines_of(api: httpx.AsyncClient, manifest: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for item in manifest["output"]:
        answer = await api.get(
            item["url"].removeprefix("http://gateway.test"), headers={"Accept": "application/fhir+ndjson"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/fhir+ndjson")
        lines = [orjson.loads(line) for line in answer.content.splitlines()]
        assert len(lines) == item["count"]
        out.setdefault(item["type"], []).extend(lines)
    return out


async def stored(app: FastAPI, res_type: str) -> list[dict[str, Any]]:
    async with app.state.engine.connect() as conn:
        rows = await conn.execute(
            select(resource.c.content).where(resource.c.res_type == res_type, resource.c.deleted.is_(False))
        )
        return sorted((orjson.loads(r[0]) for r in rows), key=lambda r: r["id"])


async def set_updated(app: FastAPI, job_id: str, *, seconds_ago: float) -> None:
    """Wind a job's clock back, as if it had waited (or made no progress) that long."""
    async with app.state.engine.begin() as conn:
        then = now_us() - int(seconds_ago * 1_000_000)
        await conn.execute(update(export_job).where(export_job.c.id == job_id).values(updated_at=then))


async def seed(api: httpx.AsyncClient) -> None:
    for n in range(12):
        await put(api, patient(f"p{n:02d}"))
        await put(api, observation(f"o{n:02d}", f"p{n:02d}"))
    await put(api, organization("org1"))
    await put(api, group("g1", ["p01", "p03"]))


async def test_system_export_is_exactly_the_store(export_app: FastAPI, api: httpx.AsyncClient) -> None:
    await seed(api)
    manifest = await finished(export_app, api, await kick_off(api))
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    assert manifest["request"].endswith("/fhir/$export")
    exported = await lines_of(api, manifest)
    assert set(exported) == {"Patient", "Observation", "Organization", "Group"}
    for res_type, found in exported.items():
        assert sorted(found, key=lambda r: r["id"]) == await stored(export_app, res_type)
    # 12 Patients in parts of at most 7 (export_file_resources=7 in the fixture)
    assert [o["count"] for o in manifest["output"] if o["type"] == "Patient"] == [7, 5]


async def test_type_and_since(export_app: FastAPI, api: httpx.AsyncClient) -> None:
    await seed(api)
    exported = await lines_of(
        api, await finished(export_app, api, await kick_off(api, _type="Observation,Organization"))
    )
    assert set(exported) == {"Observation", "Organization"}
    later = await put(api, {**patient("p05"), "gender": "male"})
    since = later["meta"]["lastUpdated"]
    await put(api, {**observation("o07", "p07"), "status": "amended"})
    exported = await lines_of(api, await finished(export_app, api, await kick_off(api, _since=since)))
    # p05 was updated at exactly _since (not after); o07 after
    assert {t: [r["id"] for r in rs] for t, rs in exported.items()} == {"Observation": ["o07"]}


async def test_patient_and_group_exports(export_app: FastAPI, api: httpx.AsyncClient) -> None:
    await seed(api)
    everyone = await lines_of(api, await finished(export_app, api, await kick_off(api, "/fhir/Patient/$export")))
    assert set(everyone) == {"Patient", "Observation"}  # Organization and Group are in no Patient's compartment
    assert len(everyone["Patient"]) == 12 and len(everyone["Observation"]) == 12
    members = await lines_of(api, await finished(export_app, api, await kick_off(api, "/fhir/Group/g1/$export")))
    assert {t: sorted(r["id"] for r in rs) for t, rs in members.items()} == {
        "Patient": ["p01", "p03"],
        "Observation": ["o01", "o03"],
    }
    unknown = await api.get("/fhir/Group/nobody/$export", headers=ASYNC)
    assert unknown.status_code == 404
    wrong_type = await api.get("/fhir/Patient/$export", params={"_type": "Organization"}, headers=ASYNC)
    assert wrong_type.status_code == 400


async def test_cancel_removes_the_job_and_its_files(export_app: FastAPI, api: httpx.AsyncClient) -> None:
    await seed(api)
    status_url = await kick_off(api)
    manifest = await finished(export_app, api, status_url)
    job_id = status_url.rsplit("/", 1)[1]
    folder = job_folder(export_app.state.settings, job_id)
    assert len(list(folder.iterdir())) == len(manifest["output"])
    cancelled = await api.delete(status_url)
    assert cancelled.status_code == 202
    assert not folder.exists()
    assert (await api.get(status_url)).status_code == 404
    assert (await api.get(manifest["output"][0]["url"].removeprefix("http://gateway.test"))).status_code == 404
    # a job cancelled before a worker takes it is skipped by the worker
    second = await kick_off(api)
    assert (await api.delete(second)).status_code == 202
    assert await run_export(export_app.state.engine, export_app.state.settings, second.rsplit("/", 1)[1]) == "skipped"


async def test_a_job_run_twice_gives_the_same_files(export_app: FastAPI, api: httpx.AsyncClient) -> None:
    """A killed worker's job (left running, half written) is run again from the start once its progress has stopped
    for KWG_EXPORT_STALLED_SECONDS; while its worker may still be alive, a second message for it is skipped."""
    await seed(api)
    status_url = await kick_off(api)
    job_id = status_url.rsplit("/", 1)[1]
    engine, settings = export_app.state.engine, export_app.state.settings
    await jobs.mark(engine, job_id, jobs.RUNNING, "Patient: 3 resources")
    folder = job_folder(settings, job_id)
    folder.mkdir(parents=True)
    (folder / "Patient.1.ndjson").write_bytes(b'{"half":')
    assert await run_export(engine, settings, job_id) == "skipped"  # running, with recent progress
    assert (folder / "Patient.1.ndjson").read_bytes() == b'{"half":'  # left alone
    await set_updated(export_app, job_id, seconds_ago=settings.export_stalled_seconds + 1)
    assert await run_export(engine, settings, job_id) == "done"
    exported = await lines_of(api, (await api.get(status_url)).json())
    assert sorted(exported["Patient"], key=lambda r: r["id"]) == await stored(export_app, "Patient")


@pytest.mark.parametrize(
    ("params", "headers", "named"),
    [
        ({}, {"Accept": "application/fhir+json"}, "Prefer"),
        ({"_outputFormat": "text/csv"}, ASYNC, "_outputFormat"),
        ({"_type": "Patient,Spaceship"}, ASYNC, "_type"),
        ({"_since": "yesterday"}, ASYNC, "_since"),
        ({"_since": "2026-01-01"}, ASYNC, "_since"),
        ({"_typeFilter": "Patient?gender=female"}, ASYNC, "_typeFilter"),
    ],
)
async def test_bad_kick_offs_are_400_naming_the_parameter(
    api: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str], named: str
) -> None:
    answer = await api.get("/fhir/$export", params=params, headers=headers)
    assert answer.status_code == 400
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == [named]
    assert named in outcome["issue"][0]["diagnostics"]


async def test_output_format_synonyms_are_accepted(api: httpx.AsyncClient) -> None:
    for fmt in ("application/fhir+ndjson", "application/ndjson", "ndjson"):
        await kick_off(api, _outputFormat=fmt)


async def test_another_client_cannot_poll_download_or_cancel(export_app: FastAPI, api: httpx.AsyncClient) -> None:
    await seed(api)
    status_url = await kick_off(api)
    manifest = await finished(export_app, api, status_url)
    act_as(export_app, replace(DEVELOPMENT_CALLER, client_id="someone-else"))
    assert (await api.get(status_url)).status_code == 404
    assert (await api.get(manifest["output"][0]["url"].removeprefix("http://gateway.test"))).status_code == 404
    assert (await api.delete(status_url)).status_code == 404
    act_as(export_app, DEVELOPMENT_CALLER)
    assert (await api.get(status_url)).status_code == 200


async def test_system_export_only_for_the_icb(export_app: FastAPI, api: httpx.AsyncClient) -> None:
    act_as(export_app, TRUST)
    refused = await api.get("/fhir/$export", headers=ASYNC)
    assert refused.status_code == 403
    act_as(export_app, replace(ICB, scopes=frozenset({"system/Patient.read"})))
    assert (await api.get("/fhir/$export", headers=ASYNC)).status_code == 403
    act_as(export_app, ICB)
    await kick_off(api)


async def test_access_rules_apply_to_patient_exports(export_app: FastAPI, api: httpx.AsyncClient) -> None:
    """A trust sees only the people whose care team it is on; each resource reduced to its sharing profile."""
    await seed(api)
    team = {
        "resourceType": "CareTeam",
        "id": "team-p02",
        "status": "active",
        "subject": {"reference": "Patient/p02"},
        "participant": [{"member": {"display": "Kim"}, "onBehalfOf": {"identifier": {"value": "RX4"}}}],
    }
    await put(api, team)
    act_as(export_app, TRUST)
    exported = await lines_of(api, await finished(export_app, api, await kick_off(api, "/fhir/Patient/$export")))
    assert {t: sorted(r["id"] for r in rs) for t, rs in exported.items()} == {
        "Patient": ["p02"],
        "Observation": ["o02"],
        "CareTeam": ["team-p02"],
    }


async def test_kick_off_and_download_are_audited(export_app: FastAPI, api: httpx.AsyncClient) -> None:
    await seed(api)
    manifest = await finished(export_app, api, await kick_off(api, _type="Patient"))
    await lines_of(api, manifest)
    await export_app.state.audit.flush()
    events = [e for e in await stored(export_app, "AuditEvent") if "bulk export" in e.get("outcomeDesc", "")]
    texts = sorted(e["outcomeDesc"] for e in events)
    assert len(texts) == 3, texts  # kick-off and two Patient files (7 + 5)
    assert sum("accepted" in t for t in texts) == 1 and sum("downloaded" in t for t in texts) == 2


async def test_a_running_export_stops_when_cancelled(export_app: FastAPI, api: httpx.AsyncClient) -> None:
    """DELETE while a worker writes the job: 404 at once, the files go, and the worker stops after the page it has
    in hand (the run holds after its first page until the cancellation is done)."""
    await seed(api)
    status_url = await kick_off(api, _type="Patient,Observation")
    job_id = status_url.rsplit("/", 1)[1]
    engine, settings = export_app.state.engine, export_app.state.settings
    first_page, go_on = asyncio.Event(), asyncio.Event()
    asked: list[str] = []
    read_after: list[int] = []

    async def held(engine: Any, selection: Selection, size: int) -> AsyncIterator[Sequence[reader.Row]]:
        asked.append(selection.res_type)
        async for page in reader.pages(engine, selection, size):
            if go_on.is_set():
                read_after.append(len(page))
            yield page
            if not first_page.is_set():
                first_page.set()
                await go_on.wait()

    worker = asyncio.create_task(run_export(engine, settings, job_id, read=held))
    await asyncio.wait_for(first_page.wait(), 30)
    running = await api.get(status_url)
    assert running.status_code == 202 and (await jobs.load(engine, job_id)).status == jobs.RUNNING  # type: ignore[union-attr]
    folder = job_folder(settings, job_id)
    [first_type] = asked  # the job's first type (of two)
    assert (folder / f"{first_type}.1.ndjson").read_bytes().count(b"\n") == 7  # the first page is on disk
    assert (await api.delete(status_url)).status_code == 202
    assert (await api.get(status_url)).status_code == 404
    assert not folder.exists()
    go_on.set()
    assert await asyncio.wait_for(worker, 30) == "cancelled"
    assert asked == [first_type] and len(read_after) <= 1  # it stopped: not the other type, at most one page more
    assert not folder.exists() and await jobs.load(engine, job_id) is None


async def test_what_changed_after_kick_off_is_left_for_the_next_export(
    export_app: FastAPI, api: httpx.AsyncClient
) -> None:
    await seed(api)
    status_url = await kick_off(api, _type="Patient,Observation")
    await put(api, {**patient("p03"), "gender": "male"})  # changed after the kick-off
    await put(api, patient("p99"))  # made after it
    manifest = await finished(export_app, api, status_url)
    exported = await lines_of(api, manifest)
    ids = sorted(r["id"] for r in exported["Patient"])
    assert ids == [f"p{n:02d}" for n in range(12) if n != 3] and len(exported["Observation"]) == 12
    # the next export, _since the first one's transactionTime, brings exactly those
    later = await lines_of(
        api, await finished(export_app, api, await kick_off(api, _since=manifest["transactionTime"]))
    )
    assert {t: sorted(r["id"] for r in rs) for t, rs in later.items()} == {"Patient": ["p03", "p99"]}


async def test_the_sweep_queues_a_job_no_worker_took(export_app: FastAPI, api: httpx.AsyncClient) -> None:
    await seed(api)
    engine, settings = export_app.state.engine, export_app.state.settings
    after = settings.export_stalled_seconds
    sent: list[str] = []

    def send(job_id: str) -> bool:
        sent.append(job_id)
        return True

    never_queued = (await kick_off(api)).rsplit("/", 1)[1]  # as if the broker had been down: no worker has it
    assert await requeue_stalled(engine, send, after=after) == [] and sent == []  # not waited long enough yet
    await set_updated(export_app, never_queued, seconds_ago=after + 1)
    assert await requeue_stalled(engine, send, after=after) == [never_queued] and sent == [never_queued]
    assert (await api.get(f"/fhir/$export-status/{never_queued}")).headers["x-progress"] == "queued again"
    assert await requeue_stalled(engine, send, after=after) == []  # its clock restarted: queued once
    assert await run_export(engine, settings, never_queued) == "done"  # the worker that gets the message runs it
    assert await run_export(engine, settings, never_queued) == "skipped"  # and a second message does nothing

    abandoned = (await kick_off(api)).rsplit("/", 1)[1]  # its worker died half way
    await jobs.mark(engine, abandoned, jobs.RUNNING, "Patient (1 of 4 types): 10 resources")
    await set_updated(export_app, abandoned, seconds_ago=after + 1)
    refused: list[str] = []
    assert await requeue_stalled(engine, lambda job_id: bool(refused.append(job_id)), after=after) == []
    assert refused == [abandoned]  # the broker refused it: tried again once it has waited as long again
    assert await requeue_stalled(engine, send, after=after) == []
    await set_updated(export_app, abandoned, seconds_ago=after + 1)
    assert await requeue_stalled(engine, send, after=after) == [abandoned]
    assert await run_export(engine, settings, abandoned) == "done"
    assert (await api.get(f"/fhir/$export-status/{abandoned}")).status_code == 200
    done, fresh = never_queued, (await kick_off(api)).rsplit("/", 1)[1]
    await set_updated(export_app, done, seconds_ago=after + 1)
    assert await requeue_stalled(engine, send, after=after) == []  # done jobs, and fresh ones, stay as they are
    assert (await jobs.load(engine, fresh)).status == jobs.ACCEPTED  # type: ignore[union-attr]
