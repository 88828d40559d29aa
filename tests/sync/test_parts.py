"""The sync engine's pure parts: backoff, Retry-After, destinations files, sharing, lanes, and the FHIR connector
against httpx.MockTransport (what it sends, and how each answer is classified)."""

from __future__ import annotations

import random
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import Change, ConfigurationError, PermanentError, TransientError, retry_after_seconds
from connectors.fhir.config import FhirConfig
from connectors.fhir.connector import FhirConnector
from connectors.registry import build_push_connector
from gateway.sync import sharing
from gateway.sync.backoff import retry_delay
from gateway.sync.destinations import DestinationConfigError, parse_destinations
from gateway.sync.relay import lane_of


@given(
    attempt=st.integers(1, 60),
    base=st.floats(0.01, 100),
    cap=st.floats(0.01, 10_000),
    retry_after=st.none() | st.floats(0, 100_000),
    seed=st.integers(),
)
def test_backoff_is_jittered_capped_and_honours_retry_after(
    attempt: int, base: float, cap: float, retry_after: float | None, seed: int
) -> None:
    delay = retry_delay(attempt, base=base, cap=cap, retry_after=retry_after, rng=random.Random(seed))
    ceiling = min(cap, base * 2 ** (attempt - 1))
    assert delay <= max(ceiling, min(retry_after or 0, cap)) + 1e-9
    assert delay >= ceiling / 2 - 1e-9
    if retry_after is not None:
        assert delay >= min(retry_after, cap) - 1e-9


def test_backoff_grows() -> None:
    rng = random.Random(1)
    means = [sum(retry_delay(a, base=1, cap=1e9, rng=rng) for _ in range(200)) / 200 for a in (1, 2, 3, 4)]
    assert means == sorted(means) and means[3] > 6 * means[0]


def test_retry_after_forms() -> None:
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past: now


@given(st.text(min_size=1, max_size=40), st.integers(1, 256))
def test_a_patient_always_lands_in_the_same_lane(patient: str, lanes: int) -> None:
    lane = lane_of(patient, "Encounter", "x", lanes)
    assert 0 <= lane < lanes
    assert lane == lane_of(patient, "Patient", "y", lanes)


GOOD = """
[[destination]]
name = "ics-record"
connector = "fhir"
endpoint = "https://scr.example.nhs.uk/fhir"
recipient = "nhs-provider"
bearer_token_env = "KWG_SECRET_TEST_TOKEN"
"""


def test_a_destinations_file_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    [d] = parse_destinations(GOOD)
    assert d.name == "ics-record" and d.lanes == 8 and d.recipient is sharing.Recipient.NHS_PROVIDER
    monkeypatch.setenv("KWG_SECRET_TEST_TOKEN", "s3cret-value")
    token = d.bearer_token()
    assert token is not None and token.get_secret_value() == "s3cret-value"
    assert "s3cret" not in repr(token) and "s3cret" not in repr(d)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (GOOD.replace('"nhs-provider"', '"the-press"'), "destination ics-record: recipient"),
        (GOOD.replace('endpoint = "https://scr.example.nhs.uk/fhir"', ""), "destination ics-record: endpoint"),
        (GOOD + GOOD, "destination ics-record: the name is used twice"),
        (GOOD.replace('name = "ics-record"', 'name = "ICS Record!"'), "destination ICS Record!: name"),
        (GOOD + "colour = 'blue'\n", "destination ics-record: colour"),
        ("[[destination]\n", "not valid TOML"),
    ],
)
def test_a_bad_destinations_file_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(DestinationConfigError) as caught:
        parse_destinations(text)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_a_missing_secret_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KWG_SECRET_TEST_TOKEN", raising=False)
    [d] = parse_destinations(GOOD)
    with pytest.raises(DestinationConfigError, match="KWG_SECRET_TEST_TOKEN is not set"):
        d.bearer_token()


def test_an_unknown_connector_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown connector 'carrier-pigeon'"):
        build_push_connector("carrier-pigeon", {"endpoint": "https://x.example"})


def test_sensitive_resources_go_to_nhs_providers_only() -> None:
    views = {"resourceType": "Observation", "id": "v", "meta": {"security": [{"code": "R"}]}, "status": "final"}
    assert sharing.reduce(sharing.Recipient.NHS_PROVIDER, views) == views
    assert sharing.reduce(sharing.Recipient.LOCAL_AUTHORITY, views) is None
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "meta": {"profile": ["x"]},
        "name": [{"family": "K"}],
        "address": [],
    }
    reduced = sharing.reduce(sharing.Recipient.SCHOOL, patient)
    assert reduced == {"resourceType": "Patient", "id": "p", "meta": {}, "name": [{"family": "K"}]}


def changes(*ids: str) -> list[Change]:
    return [
        Change(i, "Patient", pid, 3, {"resourceType": "Patient", "id": pid, "meta": {"versionId": "3"}}, pid)
        for i, pid in enumerate(ids, start=1)
    ]


async def push_with(handler: Any, *ids: str, token: str | None = None) -> Any:
    config = FhirConfig(endpoint="https://scr.example.nhs.uk/fhir", bearer_token=token)  # type: ignore[arg-type]
    connector = FhirConnector(config, transport=httpx.MockTransport(handler))
    try:
        return await connector.push(changes(*ids))
    finally:
        await connector.aclose()


async def test_the_connector_sends_one_transaction_in_order_with_the_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        n = len(orjson.loads(request.content)["entry"])
        return httpx.Response(200, json={"resourceType": "Bundle", "entry": [{}] * n})

    report = await push_with(handler, "a", "b", token="t0k3n")
    [request] = seen
    assert str(request.url) == "https://scr.example.nhs.uk/fhir"
    assert request.headers["authorization"] == "Bearer t0k3n"
    bundle = orjson.loads(request.content)
    assert bundle["type"] == "transaction"
    assert [e["request"] for e in bundle["entry"]] == [
        {"method": "PUT", "url": "Patient/a"},
        {"method": "PUT", "url": "Patient/b"},
    ]
    assert "meta" not in bundle["entry"][0]["resource"]  # the destination sets its own versionId
    assert [o.accepted for o in report.outcomes] == [True, True]


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"), [(500, {}, None), (503, {}, None), (429, {"Retry-After": "12"}, 12.0)]
)
async def test_server_trouble_is_transient(status: int, headers: dict[str, str], retry_after: float | None) -> None:
    with pytest.raises(TransientError) as caught:
        await push_with(lambda r: httpx.Response(status, headers=headers), "a")
    assert caught.value.status == status and caught.value.retry_after == retry_after


async def test_a_timeout_is_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(TransientError, match="timed out"):
        await push_with(handler, "a")


async def test_a_refused_batch_is_split_to_find_the_bad_change() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        urls = [e["request"]["url"] for e in orjson.loads(request.content)["entry"]]
        if "Patient/bad" in urls:
            return httpx.Response(422, json={"resourceType": "OperationOutcome", "issue": []})
        return httpx.Response(200, json={"resourceType": "Bundle", "entry": [{}] * len(urls)})

    report = await push_with(handler, "a", "bad", "c")
    assert [(o.delivery_id, o.accepted, o.status) for o in report.outcomes] == [
        (1, True, 200),
        (2, False, 422),
        (3, True, 200),
    ]
    assert report.refused[0].detail is not None and "OperationOutcome" in report.refused[0].detail


def test_permanent_error_keeps_the_detail() -> None:
    error = PermanentError("refused", status=400, detail="bad")
    assert (error.status, error.detail) == (400, "bad")
