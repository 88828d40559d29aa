"""``$validate`` over HTTP, profile validation on writes, and ``kwg validate`` on the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from gateway.cli import app as cli_app
from gateway.conformance.keyworking import cs_url, sd_url
from tests.conformance.test_keyworking_profiles import episode, task

JSON = {"Content-Type": "application/fhir+json"}
CASES = Path(__file__).resolve().parents[1] / "fixtures" / "validator-cases" / "files"


def _issues(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    issues: list[dict[str, Any]] = body["issue"]
    return issues


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    return [i for i in _issues(response) if i["severity"] in ("error", "fatal")]


async def test_validate_a_valid_resource_answers_all_ok(client: httpx.AsyncClient) -> None:
    r = await client.post("/fhir/EpisodeOfCare/$validate", json=episode(), headers=JSON)
    assert r.status_code == 200
    assert _errors(r) == []
    assert _issues(r)


async def test_validate_an_invalid_resource_answers_200_with_errors_and_writes_nothing(
    client: httpx.AsyncClient,
) -> None:
    resource = task()
    resource["id"] = "rec1"
    del resource["owner"]
    r = await client.post("/fhir/Task/$validate", json=resource, headers=JSON)
    assert r.status_code == 200
    assert [i["expression"] for i in _errors(r)] == [["Task.owner"]]
    assert (await client.get("/fhir/Task/rec1")).status_code == 404


async def test_validate_takes_a_parameters_body_with_a_profile(client: httpx.AsyncClient) -> None:
    resource = task()
    del resource["meta"]
    del resource["owner"]
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": resource},
            {"name": "profile", "valueUri": sd_url("CETRRecommendationTask")},
        ],
    }
    r = await client.post("/fhir/Task/$validate", json=parameters, headers=JSON)
    assert r.status_code == 200
    assert [i["expression"] for i in _errors(r)] == [["Task.owner"]]
    r = await client.post("/fhir/Task/$validate", json=resource, headers=JSON)
    assert _errors(r) == []


async def test_validate_with_a_profile_query_parameter(client: httpx.AsyncClient) -> None:
    resource = episode()
    del resource["meta"]
    del resource["careManager"]  # the case is active: the profile's kwg-eoc-1 invariant wants its keyworker
    r = await client.post(
        "/fhir/EpisodeOfCare/$validate", params={"profile": sd_url("KeyworkingEpisodeOfCare")}, json=resource
    )
    assert [(i["expression"], i["code"]) for i in _errors(r)] == [(["EpisodeOfCare"], "invariant")]
    assert "kwg-eoc-1" in _errors(r)[0]["diagnostics"]


async def test_validate_the_stored_instance(client: httpx.AsyncClient) -> None:
    resource = episode()
    r = await client.put("/fhir/EpisodeOfCare/case1", json={**resource, "id": "case1"}, headers=JSON)
    assert r.status_code == 201
    r = await client.post("/fhir/EpisodeOfCare/case1/$validate")
    assert r.status_code == 200
    assert _errors(r) == []
    changed = {**resource, "id": "case1", "status": "finished"}
    del changed["type"]
    r = await client.post("/fhir/EpisodeOfCare/case1/$validate", json=changed, headers=JSON)
    assert [i["expression"] for i in _errors(r)] == [["EpisodeOfCare.type"]]
    assert (await client.post("/fhir/EpisodeOfCare/missing/$validate")).status_code == 404


async def test_validate_reports_a_type_mismatch(client: httpx.AsyncClient) -> None:
    r = await client.post("/fhir/Task/$validate", json=episode(), headers=JSON)
    assert r.status_code == 200
    assert "does not match" in _errors(r)[0]["diagnostics"]


@pytest.mark.parametrize("name", ["json-comments-2.json", "json-comma-bad-1.json", "json-no-quotes-2.json"])
async def test_json5_is_refused_by_the_parser(client: httpx.AsyncClient, name: str) -> None:
    r = await client.post("/fhir/Patient/$validate", content=(CASES / name).read_bytes(), headers=JSON)
    assert r.status_code == 400
    assert _issues(r)[0]["code"] == "structure"


async def test_dstu2_fhir_comments_property_is_a_structure_error(client: httpx.AsyncClient) -> None:
    r = await client.post("/fhir/Patient/$validate", content=(CASES / "json-comments.json").read_bytes(), headers=JSON)
    assert r.status_code == 200
    errors = _errors(r)
    assert errors
    assert all(i["expression"][0].startswith("Patient.fhir_comments") for i in errors)


async def test_write_of_a_profiled_resource_is_validated(client: httpx.AsyncClient) -> None:
    bad = task()
    del bad["owner"]
    r = await client.post("/fhir/Task", json=bad, headers=JSON)
    assert r.status_code == 400
    assert [i["expression"] for i in _issues(r)] == [["Task.owner"]]
    r = await client.post("/fhir/Task", json=task(), headers=JSON)
    assert r.status_code == 201


async def test_write_of_an_unprofiled_resource_skips_profile_checks(client: httpx.AsyncClient) -> None:
    resource = task()
    del resource["meta"]
    del resource["owner"]
    r = await client.post("/fhir/Task", json=resource, headers=JSON)
    assert r.status_code == 201


def test_cli_validate_reports_errors_and_exit_code(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(episode()))
    broken = episode()
    del broken["type"]
    bad.write_text(json.dumps(broken))
    runner = CliRunner()
    result = runner.invoke(cli_app, ["validate", str(good)])
    assert result.exit_code == 0, result.output
    assert "0 error(s)" in result.output
    result = runner.invoke(cli_app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert "EpisodeOfCare.type" in result.output


def test_cli_validate_reads_fhir_xml_and_a_profile_option() -> None:
    example = Path(__file__).parent / "fixtures" / "ukcore-examples" / "UKCore-Task-Colonoscopy-Example.xml"
    runner = CliRunner()
    result = runner.invoke(cli_app, ["validate", str(example), "--profile", sd_url("CETRRecommendationTask")])
    assert result.exit_code == 1
    assert "Task.description: minimum required = 1" in result.output


async def test_the_store_takes_a_referred_case_and_refuses_an_active_one_without_a_keyworker(
    client: httpx.AsyncClient,
) -> None:
    referred = episode()
    referred["status"] = "waitlist"
    referred["extension"] = [
        {"url": sd_url("keyworking-phase"), "valueCoding": {"system": cs_url("keyworking-phase"), "code": "referred"}}
    ]
    del referred["careManager"]
    r = await client.post("/fhir/EpisodeOfCare", json=referred, headers=JSON)
    assert r.status_code == 201, r.text
    active = episode()
    del active["careManager"]
    r = await client.post("/fhir/EpisodeOfCare", json=active, headers=JSON)
    assert r.status_code == 400
    assert [(i["expression"], i["code"]) for i in _issues(r)] == [(["EpisodeOfCare"], "invariant")]
