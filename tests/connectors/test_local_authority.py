"""The local-authority connectors: the path language, JSON push (MockTransport and the fake as a real process),
the CSV file drop, SSDA903 import and its FHIR mapping, and LA-owned recommendations."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from connectors.base import Change, ConfigurationError, ConnectorConfig, PermanentError, TransientError
from connectors.local_authority import ssda903
from connectors.local_authority.config import LocalAuthorityConfig, LocalAuthorityCsvConfig
from connectors.local_authority.connector import LocalAuthorityConnector
from connectors.local_authority.csv_drop import LocalAuthorityCsvConnector, cell
from connectors.local_authority.paths import PathError, parse_path
from connectors.local_authority.recommendations import owned_by, task_status
from connectors.local_authority.registry_entry import ENTRIES, build, build_csv
from connectors.local_authority.ssda903_fhir import episode_to_fhir, patient_identifiers
from mappings.fhir import validate_structure
from mappings.keyworking import urls
from tests.servers import _free_port, _wait_port

FIXTURES = Path(__file__).parent.parent / "fixtures" / "local_authority"
ENDPOINT = "https://la.test/csc"
LA_CHILD = urls.la_child_id_system("820")
MAPPING = {
    "child_id": f"Patient.identifier.where(system='{LA_CHILD}').value",
    "nhs_number": f"Patient.identifier.where(system='{urls.NHS_NUMBER}').value",
    "family_name": "Patient.name[0].family",
    "task_status": "Task.status",
}
PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "identifier": [
        {"system": urls.NHS_NUMBER, "value": "9434765919"},
        {"system": LA_CHILD, "value": "LAC0001"},
    ],
    "name": [{"family": "Testperson", "given": ["Alex"]}, {"family": "Other"}],
}


def _change(n: int, resource: dict[str, Any] | None = PATIENT, *, res_type: str = "Patient") -> Change:
    return Change(n, res_type, f"r{n}", 1, resource, "p1")


def _connector(handler: Any, **settings_: Any) -> LocalAuthorityConnector:
    config = LocalAuthorityConfig.model_validate({"endpoint": ENDPOINT, "mapping": MAPPING, **settings_})
    return LocalAuthorityConnector(config, transport=httpx.MockTransport(handler))


# --- paths -------------------------------------------------------------------------------------------------------


def test_paths_follow_dots_indexes_and_system_filters() -> None:
    assert parse_path(MAPPING["child_id"]).value(PATIENT) == "LAC0001"
    assert parse_path("Patient.name[1].family").value(PATIENT) == "Other"
    assert parse_path("Patient.name.given[0]").value(PATIENT) == "Alex"
    assert parse_path("Patient.name[5].family").value(PATIENT) is None
    assert parse_path("Task.status").value(PATIENT) is None  # a path for another type gives nothing
    assert parse_path("Patient.name").value(PATIENT) is None  # an object is not a field value


@pytest.mark.parametrize("bad", ["patient.id", "Patient", "Patient.", "Patient.name[x]", "Patient..id", "Patient id"])
def test_paths_the_language_cannot_read_are_refused(bad: str) -> None:
    with pytest.raises(PathError):
        parse_path(bad)


@given(st.recursive(st.text(max_size=5) | st.integers(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)))
@settings(max_examples=100)
def test_paths_never_raise_on_any_content(content: Any) -> None:
    resource = {"resourceType": "Patient", "name": content, "identifier": content}
    for path in MAPPING.values():
        value = parse_path(path).value(resource)
        assert value is None or isinstance(value, str | int | float | bool)


def test_a_mapping_with_a_bad_path_or_an_envelope_name_fails_the_config() -> None:
    with pytest.raises(ValidationError, match="child"):
        LocalAuthorityConfig.model_validate({"endpoint": ENDPOINT, "mapping": {"child": "Patient.name[x]"}})
    with pytest.raises(ValidationError, match="envelope"):
        LocalAuthorityConfig.model_validate({"endpoint": ENDPOINT, "mapping": {"deleted": "Patient.id"}})
    with pytest.raises(ConfigurationError, match="local-authority-json"):
        build({"endpoint": ENDPOINT, "mapping": {"x": "nope"}}, None)


# --- JSON push ----------------------------------------------------------------------------------------------------


async def test_each_change_is_posted_as_one_mapped_document_with_an_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={})

    connector = _connector(handler, api_key="k-123")
    report = await connector.push([_change(1), _change(2, None)])
    await connector.aclose()
    assert [o.accepted for o in report.outcomes] == [True, True]
    first = json.loads(seen[0].content)
    assert first == {
        "resource_type": "Patient",
        "resource_id": "r1",
        "version_id": 1,
        "deleted": False,
        "child_id": "LAC0001",
        "nhs_number": "9434765919",
        "family_name": "Testperson",
        "task_status": None,
    }
    assert json.loads(seen[1].content)["deleted"] is True
    assert seen[0].headers["Idempotency-Key"] == "Patient/r1/_history/1"
    assert seen[0].headers["X-API-Key"] == "k-123"
    assert str(seen[0].url) == ENDPOINT


async def test_a_batch_goes_as_one_array_and_a_refused_batch_is_split() -> None:
    bodies: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        if isinstance(body, list):
            return httpx.Response(400, json={"error": "one is bad"})
        return httpx.Response(422 if body["resource_id"] == "r2" else 201, json={})

    connector = _connector(handler, batch=True)
    report = await connector.push([_change(1), _change(2), _change(3)])
    assert isinstance(bodies[0], list) and len(bodies[0]) == 3
    assert [(o.delivery_id, o.accepted, o.status) for o in report.outcomes] == [
        (1, True, 201),
        (2, False, 422),
        (3, True, 201),
    ]
    await connector.aclose()


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [(500, {}, TransientError), (503, {}, TransientError), (429, {"Retry-After": "7"}, TransientError)],
)
async def test_5xx_and_429_raise_transient_so_the_batch_is_retried(
    status: int, headers: dict[str, str], expected: type[Exception]
) -> None:
    connector = _connector(lambda r: httpx.Response(status, headers=headers))
    with pytest.raises(expected) as caught:
        await connector.push([_change(1)])
    assert isinstance(caught.value, TransientError) and caught.value.status == status
    if status == 429:
        assert caught.value.retry_after == 7.0
    await connector.aclose()


async def test_4xx_refuses_that_change_only_and_timeouts_are_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["resource_id"] == "r1":
            return httpx.Response(400, text="child_id unknown")
        return httpx.Response(200)

    connector = _connector(handler)
    report = await connector.push([_change(1), _change(2)])
    assert [(o.accepted, o.status) for o in report.outcomes] == [(False, 400), (True, 200)]
    assert report.refused[0].detail == "child_id unknown"
    await connector.aclose()

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    connector = _connector(slow)
    with pytest.raises(TransientError, match="timed out"):
        await connector.push([_change(1)])
    await connector.aclose()


# --- recommendations ----------------------------------------------------------------------------------------------


def _recommendation(task_id: str, ods: str, status: str = "requested") -> dict[str, Any]:
    owner = {"type": "Organization", "identifier": {"system": urls.ODS_ORGANISATION, "value": ods}}
    return {
        "resourceType": "Task",
        "id": task_id,
        "meta": {"profile": [urls.CETR_RECOMMENDATION_TASK]},
        "extension": [{"url": urls.EXT_OWNER_AGENCY, "valueReference": owner}],
        "status": status,
        "intent": "plan",
        "description": "Arrange a short-break placement review",
    }


def test_the_la_owns_only_recommendations_with_its_ods_code() -> None:
    mine, theirs = _recommendation("t1", "LA820"), _recommendation("t2", "RX1")
    rule_task = {"resourceType": "Task", "id": "t3", "status": "requested"}
    assert [t["id"] for t in owned_by([mine, theirs, rule_task, PATIENT], "la820")] == ["t1"]


def test_la_status_words_map_to_task_status() -> None:
    assert task_status("In Progress") == "in-progress"
    assert task_status("not_started") == "requested"
    assert task_status("DONE") == "completed"
    assert task_status("withdrawn") == "cancelled"
    assert task_status("pending-ish") is None


async def test_recommendation_status_is_read_back_and_classified() -> None:
    answers = {"t1": httpx.Response(200, json={"status": "in progress"}), "t2": httpx.Response(404)}
    answers["t3"] = httpx.Response(200, json={"status": "mystery"})
    answers["t4"] = httpx.Response(502)
    connector = _connector(lambda r: answers[r.url.path.rsplit("/", 1)[-1]])
    assert await connector.recommendation_status("t1") == "in-progress"
    with pytest.raises(PermanentError) as caught:
        await connector.recommendation_status("t2")
    assert caught.value.status == 404
    with pytest.raises(PermanentError, match="mystery"):
        await connector.recommendation_status("t3")
    with pytest.raises(TransientError):
        await connector.recommendation_status("t4")
    await connector.aclose()


# --- the fake LA as a real process ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_la(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("la") / "fake-la.log"
    command = [sys.executable, "-m", "connectors.fake.local_authority_server", "--port", str(port)]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        if not _wait_port(port):
            raise RuntimeError(f"the fake LA did not start: {log.read_text()}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_against_the_fake_la_as_a_real_process(fake_la: str) -> None:
    async with httpx.AsyncClient(base_url=fake_la) as admin:
        await admin.post("/_reset")
        await admin.post("/_faults", json={"plan": ["503"], "reject_ids": ["Patient/r3"]})
        await admin.put("/_recommendations/t1", json={"status": "Completed"})
        connector = build({"endpoint": f"{fake_la}/la", "mapping": MAPPING, "ods_code": "LA820"}, None)
        assert isinstance(connector, LocalAuthorityConnector)
        await connector.check()
        with pytest.raises(TransientError):
            await connector.push([_change(1)])
        report = await connector.push([_change(1), _change(2), _change(3)])
        assert [o.accepted for o in report.outcomes] == [True, True, False]
        await connector.push([_change(1)])  # sent twice: the LA keeps one
        assert await connector.recommendation_status("t1") == "completed"
        with pytest.raises(PermanentError):
            await connector.recommendation_status("unknown")
        await connector.aclose()
        log = (await admin.get("/_log")).json()
    assert [d["resource_id"] for d in log["documents"]] == ["r1", "r2"]
    assert log["documents"][0]["child_id"] == "LAC0001"


# --- CSV file drop ------------------------------------------------------------------------------------------------


def test_the_csv_drop_has_its_own_config_because_http_urls_refuse_file_urls(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        ConnectorConfig.model_validate({"endpoint": f"file://{tmp_path}"})
    config = LocalAuthorityCsvConfig.model_validate({"endpoint": f"file://{tmp_path}", "columns": MAPPING})
    assert config.endpoint.path == str(tmp_path)
    with pytest.raises(ValidationError, match="no host"):
        LocalAuthorityCsvConfig.model_validate({"endpoint": "file://server/share", "columns": MAPPING})
    with pytest.raises(ConfigurationError):
        build_csv({"endpoint": "https://la.test/x", "columns": MAPPING}, None)
    assert set(ENTRIES) == {"local-authority-json", "local-authority-csv"}


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


async def test_csv_rows_append_to_one_file_per_day(tmp_path: Path) -> None:
    day = [date(2026, 3, 1)]
    config = LocalAuthorityCsvConfig.model_validate({"endpoint": f"file://{tmp_path}", "columns": MAPPING})
    connector = LocalAuthorityCsvConnector(config, today=lambda: day[0])
    await connector.check()
    await connector.push([_change(1)])
    await connector.push([_change(2, None)])
    day[0] = date(2026, 3, 2)
    await connector.push([_change(3)])
    first = _rows(tmp_path / "kwg-changes-2026-03-01.csv")
    assert [r["resource_id"] for r in first] == ["r1", "r2"]
    assert first[0]["child_id"] == "LAC0001" and first[0]["task_status"] == ""
    assert first[1]["deleted"] == "true" and first[1]["child_id"] == ""
    assert [r["resource_id"] for r in _rows(tmp_path / "kwg-changes-2026-03-02.csv")] == ["r3"]
    assert list(tmp_path.glob("*.tmp")) == []


async def test_csv_writes_are_atomic_a_failed_write_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = LocalAuthorityCsvConfig.model_validate({"endpoint": f"file://{tmp_path}", "columns": MAPPING})
    connector = LocalAuthorityCsvConnector(config, today=lambda: date(2026, 3, 1))
    await connector.push([_change(1)])
    target = tmp_path / "kwg-changes-2026-03-01.csv"
    before = target.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(TransientError, match="OSError"):
        await connector.push([_change(2)])
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".kwg-changes-2026-03-01.csv.lock")] == [
        target.name
    ]


async def test_concurrent_csv_pushes_lose_no_row(tmp_path: Path) -> None:
    config = LocalAuthorityCsvConfig.model_validate({"endpoint": f"file://{tmp_path}", "columns": MAPPING})
    connector = LocalAuthorityCsvConnector(config, today=lambda: date(2026, 3, 1))
    await asyncio.gather(*(connector.push([_change(n)]) for n in range(40)))
    rows = _rows(tmp_path / "kwg-changes-2026-03-01.csv")
    assert sorted(int(r["resource_id"][1:]) for r in rows) == list(range(40))


def test_csv_cells_defuse_formulas() -> None:
    assert cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert cell("@SUM") == "'@SUM"
    assert cell(-3) == "-3"
    assert cell(None) == "" and cell(True) == "true"


async def test_a_missing_drop_folder_fails_the_check(tmp_path: Path) -> None:
    config = LocalAuthorityCsvConfig.model_validate({"endpoint": f"file://{tmp_path}/nope", "columns": MAPPING})
    with pytest.raises(ConfigurationError, match="does not exist"):
        await LocalAuthorityCsvConnector(config).check()


# --- SSDA903 --------------------------------------------------------------------------------------------------------


def _return() -> ssda903.Ssda903Import:
    header = (FIXTURES / "ssda903-header.csv").read_text()
    episodes = (FIXTURES / "ssda903-episodes.csv").read_text()
    return ssda903.parse_return(header, episodes)


def test_ssda903_reads_children_and_episodes() -> None:
    result = _return()
    assert [c.child_id for c in result.children] == ["LAC0001", "LAC0002"]
    assert result.children[0] == ssda903.LookedAfterChild("LAC0001", date(2012, 3, 9), "male", "A82020011234X")
    first, second = result.episodes[0], result.episodes[1]
    assert (first.legal_status, first.placement_type, first.start, first.end, first.reason_ended) == (
        "C2",
        "U1",
        date(2024, 4, 1),
        date(2024, 9, 15),
        "X1",
    )
    assert second.end is None and second.placement_provider == "PR2"
    assert len(result.episodes) == 2


def test_ssda903_reports_every_problem_with_file_row_and_column() -> None:
    errors = {(e.file, e.row, e.column) for e in _return().errors}
    assert errors == {
        ("Header", 4, "SEX"),
        ("Header", 4, "DOB"),
        ("Episodes", 4, "PLACE"),  # blank PLACE
        ("Episodes", 5, "CHILD"),  # not in the Header file
        ("Episodes", 6, "DEC"),  # ends before it starts
    }
    assert str(_return().errors[0]).startswith("Header row 4, ")


def test_ssda903_missing_columns_are_reported_on_row_1() -> None:
    result = ssda903.parse_episodes("CHILD,DECOM\nLAC1,01/01/2025\n")
    assert {(e.row, e.column) for e in result.errors} == {(1, c) for c in ("RNE", "LS", "CIN", "PLACE")}
    assert result.episodes == []


@given(st.text(max_size=300))
@settings(max_examples=200)
def test_ssda903_never_raises_on_any_text(text: str) -> None:
    result = ssda903.parse_episodes("CHILD,DECOM,RNE,LS,CIN,PLACE,DEC,REC\n" + text)
    assert all(e.row >= 2 for e in result.errors)


def test_ssda903_episodes_map_to_valid_r4_observations() -> None:
    result = _return()
    observation = episode_to_fhir(result.episodes[0], patient_id="p1", la_number="820")
    assert validate_structure(observation) == []
    assert observation["effectivePeriod"] == {"start": "2024-04-01", "end": "2024-09-15"}
    components = {
        c["code"]["coding"][0]["code"]: c["valueCodeableConcept"]["coding"][0]["code"] for c in observation["component"]
    }
    assert components == {
        "legal-status": "C2",
        "placement-type": "U1",
        "category-of-need": "N1",
        "reason-new-episode": "S",
        "placement-provider": "PR1",
        "reason-episode-ceased": "X1",
    }
    open_episode = episode_to_fhir(result.episodes[1], patient_id="p1", la_number="820")
    assert validate_structure(open_episode) == [] and "end" not in open_episode["effectivePeriod"]
    assert patient_identifiers(result.children[0], "820") == [
        {"system": LA_CHILD, "value": "LAC0001"},
        {"system": urls.UPN, "value": "A82020011234X"},
    ]
