"""``POST /fhir`` from the outside, fuzzed: arbitrary JSON, Bundles of every type with entries whose request,
fullUrl, resource and references are arbitrary or subtly wrong (on SQLite and PostgreSQL).

The answer is a transaction-response or batch-response Bundle, or an OperationOutcome with a 4xx status; never a
server error, and a refused transaction leaves nothing behind.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.store.repository import SqlFhirRepository

JSON = {"Content-Type": "application/fhir+json"}
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
TYPES = ["Patient", "Encounter", "Observation", "EpisodeOfCare", "Bundle", "AuditEvent", "Provenance", "Nope", ""]
URLS = st.one_of(
    st.sampled_from(TYPES),
    st.builds(lambda t, i: f"{t}/{i}", st.sampled_from(TYPES), st.text(max_size=12)),
    st.builds(
        lambda t, q: f"{t}?{q}",
        st.sampled_from(TYPES),
        st.sampled_from(["identifier=a|b", "name=x", "_id=", "bogus=1", "_count=²", "x"]),
    ),
    st.sampled_from(
        [
            "",
            "/",
            "Patient/p1/_history/1",
            "Patient/$everything",
            "metadata",
            "http://x/Patient/1",
            "Patient/urn:uuid:1",
        ]
    ),
    st.text(max_size=30),
)
PLACEHOLDERS = [f"urn:uuid:{n:08d}-0000-4000-8000-000000000000" for n in range(3)]


@st.composite
def resources(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 5)) == 0:
        return draw(json_values)
    res_type = draw(st.sampled_from(TYPES))
    resource: dict[str, Any] = {"resourceType": res_type}
    if draw(st.booleans()):
        resource["id"] = draw(st.text(max_size=10) | st.just("p1"))
    if res_type == "Patient" and draw(st.booleans()):
        resource["name"] = [{"family": draw(st.text(max_size=10)), "given": draw(json_values)}]
    if draw(st.booleans()):
        resource["subject"] = {"reference": draw(st.sampled_from(PLACEHOLDERS) | st.text(max_size=15))}
    if draw(st.booleans()):
        resource[draw(st.text(max_size=8))] = draw(json_values)
    return resource


@st.composite
def entries(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 6)) == 0:
        return draw(json_values)
    entry: dict[str, Any] = {}
    if draw(st.booleans()):
        entry["fullUrl"] = draw(st.sampled_from(PLACEHOLDERS) | st.text(max_size=15))
    if draw(st.integers(0, 4)):
        request: dict[str, Any] = {
            "method": draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "get", ""]) | scalars),
            "url": draw(URLS | scalars),
        }
        for header in ("ifMatch", "ifNoneExist", "ifNoneMatch", "ifModifiedSince"):
            if draw(st.integers(0, 4)) == 0:
                request[header] = draw(st.sampled_from(['W/"1"', 'W/"x"', "identifier=a|b", "1"]) | scalars)
        entry["request"] = request
    if draw(st.integers(0, 3)):
        entry["resource"] = draw(resources())
    return entry


@st.composite
def bundles(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 6)) == 0:
        return draw(json_values)
    bundle: dict[str, Any] = {"resourceType": draw(st.sampled_from(["Bundle", "Bundle", "Patient", ""]))}
    if draw(st.integers(0, 5)):
        bundle["type"] = draw(st.sampled_from(["transaction", "batch", "document", "searchset", ""]) | scalars)
    if draw(st.integers(0, 5)):
        bundle["entry"] = draw(st.lists(entries(), max_size=4) | json_values)
    return bundle


def assert_fhir_answer(answer: httpx.Response) -> None:
    assert answer.status_code < 500, answer.text
    body = answer.json()
    if answer.status_code == 200:
        assert body["resourceType"] == "Bundle" and body["type"] in ("transaction-response", "batch-response")
    else:
        assert 400 <= answer.status_code < 500
        assert body["resourceType"] == "OperationOutcome" and body["issue"]


async def stored_count(repo: SqlFhirRepository) -> int:
    return (await repo.history(None, None)).total


def serialised(body: Any) -> bytes:
    """JSON as a client may send it (integers beyond 64 bits, NaN and Infinity included)."""
    content = json.dumps(body)
    return content.encode()


@FUZZ
@given(body=bundles())
async def test_any_bundle_is_answered_with_a_bundle_or_an_operation_outcome(
    client: httpx.AsyncClient, repo: SqlFhirRepository, body: Any
) -> None:
    before = await stored_count(repo)
    answer = await client.post("/fhir", content=serialised(body), headers=JSON)
    assert_fhir_answer(answer)
    if answer.status_code != 200 and isinstance(body, dict) and body.get("type") == "transaction":
        assert await stored_count(repo) == before  # a refused transaction writes nothing


@FUZZ
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
@example(raw=b'{"resourceType": "Bundle", "type": "transaction", "entry": [' * 200)
@example(
    raw=b'{"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": "GET", "url": "Patient"}}]'
    + b" " * 10
)
@example(raw=b'{"resourceType": "Bundle", "type": "transaction", "entry": [{"fullUrl": "urn:uuid:\\ud800"}]}')
async def test_any_body_bytes_are_an_operation_outcome_or_a_bundle(client: httpx.AsyncClient, raw: bytes) -> None:
    answer = await client.post("/fhir", content=raw, headers=JSON)
    assert_fhir_answer(answer)


@FUZZ
@given(body=json_values)
async def test_any_json_as_a_resource_is_an_operation_outcome_or_stored(client: httpx.AsyncClient, body: Any) -> None:
    """The same parser takes single resources: ``POST /fhir/Patient`` with any JSON."""
    answer = await client.post("/fhir/Patient", content=serialised(body), headers=JSON)
    assert answer.status_code < 500, answer.text
    assert answer.status_code in (200, 201) or answer.json()["resourceType"] == "OperationOutcome"


def _entry(method: str, url: str, resource: dict[str, Any] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"request": {"method": method, "url": url}}
    if resource is not None:
        entry["resource"] = resource
    return entry


@pytest.mark.parametrize(
    ("entry", "status"),
    [
        (_entry("POST", "Patient", {"resourceType": "Patient", "birthDate": "9999-12-31"}), 200),  # the edge of time
        (_entry("GET", "Patient?_count=²"), 400),  # a digit int() cannot read
        (_entry("POST", "Patient", {"resourceType": "Patient", "name": [{"family": "a\u0000b"}]}), 400),  # NUL
    ],
    ids=["birth-date-9999-12-31", "superscript-count", "nul-in-a-name"],
)
async def test_inputs_that_once_met_server_errors_are_answered_through_a_bundle(
    client: httpx.AsyncClient, entry: dict[str, Any], status: int
) -> None:
    body = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    answer = await client.post("/fhir", content=orjson.dumps(body), headers=JSON)
    assert answer.status_code == status, answer.text
