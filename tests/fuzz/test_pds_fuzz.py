"""PDS answers from the outside, fuzzed: arbitrary JSON (and non-JSON) bodies, statuses and Retry-After headers for
the Patient retrieval and the trace, and arbitrary token endpoint answers.

The connector returns one of its typed results or raises a :class:`ConnectorError` (transient, permanent,
configuration); nothing else (a ``TypeError`` from a body of the wrong shape would escape the delivery's retry
logic), and no error message repeats the NHS number asked about.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from connectors.base import ConnectorError, retry_after_seconds
from connectors.pds.client import PdsClient
from connectors.pds.config import PdsConfig
from connectors.pds.results import NoMatch, NotFound, Restricted, Superseded, TooManyMatches, Traced, Verified

NHS = "9000000009"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
CONFIG = PdsConfig.model_validate(
    {
        "endpoint": "https://pds.test/personal-demographics/FHIR/R4",
        "token_url": "https://pds.test/oauth2/token",
        "api_key": SecretStr("app-key"),
        "kid": "kid-1",
        "private_key_pem": SecretStr(PEM.decode()),
    }
)
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
KEYS = [
    "resourceType",
    "id",
    "meta",
    "security",
    "name",
    "given",
    "family",
    "address",
    "line",
    "postalCode",
    "identifier",
    "system",
    "value",
    "generalPractitioner",
    "birthDate",
    "deceasedDateTime",
    "gender",
    "entry",
    "resource",
    "search",
    "score",
    "issue",
    "details",
    "coding",
    "code",
    "versionId",
    "use",
]


@st.composite
def pds_shaped(draw: st.DrawFn, depth: int = 0) -> Any:
    """JSON that looks like PDS's (its keys, nested as PDS nests them) with values of any type: deep enough to
    reach the readers' inner loops, which plain random JSON never does."""
    if depth > 3 or draw(st.integers(0, 3)) == 0:
        return draw(json_values | st.sampled_from(["Patient", "Bundle", "OperationOutcome", NHS, "R", "usual"]))
    if draw(st.booleans()):
        return [draw(pds_shaped(depth + 1)) for _ in range(draw(st.integers(0, 3)))]
    keys = draw(st.lists(st.sampled_from(KEYS), max_size=5, unique=True))
    shaped = {k: draw(pds_shaped(depth + 1)) for k in keys}
    if depth == 0 and draw(st.booleans()):
        shaped["resourceType"] = draw(st.sampled_from(["Patient", "Bundle", "OperationOutcome"]))
        shaped.setdefault("id", NHS)
    return shaped


Responder = Callable[[httpx.Request], httpx.Response]


class Clock:
    """Time that moves only when the rate limiter sleeps: no example waits for real."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


class Answering(httpx.AsyncBaseTransport):
    """PDS and its token endpoint, answering what the example says."""

    def __init__(self) -> None:
        self.token: Responder = lambda _r: httpx.Response(200, json={"access_token": "t", "expires_in": "599"})
        self.patient: Responder = lambda _r: httpx.Response(404)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return (self.token if request.url.path.endswith("/oauth2/token") else self.patient)(request)


@pytest.fixture(scope="module")
async def pds() -> AsyncIterator[tuple[PdsClient, Answering]]:
    """One client for every example (building one loads the key and signs an assertion: slow)."""
    transport, clock = Answering(), Clock()
    client = PdsClient(CONFIG, transport=transport, now=clock, clock=clock, sleep=clock.sleep)
    yield client, transport
    await client.aclose()


def patient_answer(body: Any, status: int, retry_after: str | None, raw: bytes | None) -> Responder:
    def respond(request: httpx.Request) -> httpx.Response:
        # Header values arrive as bytes (Latin-1 at most): what a server can send.
        headers = [(b"Retry-After", retry_after.encode("latin-1"))] if retry_after is not None else []
        content = raw if raw is not None else json.dumps(body).encode()
        return httpx.Response(status, content=content, headers=headers)

    return respond


async def ask(client: PdsClient, operation: str) -> object:
    if operation == "verify":
        return await client.verify(NHS)
    return await client.search("Smith", date(2010, 10, 22), "female")


RESULTS = (Verified, Superseded, Restricted, NotFound, Traced, NoMatch, TooManyMatches)


@FUZZ
@given(
    body=pds_shaped() | json_values,
    status=st.sampled_from([200, 200, 200, 201, 404, 400, 403, 408, 429, 500, 503]),
    retry_after=st.none() | st.text(st.characters(max_codepoint=0xFF, exclude_characters="\r\n"), max_size=30),
    raw=st.none() | st.binary(max_size=50),
    operation=st.sampled_from(["verify", "search"]),
)
@example(body={"resourceType": "Bundle", "entry": 5}, status=200, retry_after=None, raw=None, operation="search")
@example(
    body={"resourceType": "Patient", "id": NHS, "name": [{"given": 1}]},
    status=200,
    retry_after=None,
    raw=None,
    operation="verify",
)
@example(body={}, status=429, retry_after="²", raw=None, operation="verify")
@example(body={}, status=503, retry_after="Mon, 01 Jan 2024 00:00:00 -0000", raw=None, operation="verify")
async def test_any_pds_answer_is_a_typed_result_or_a_connector_error(
    pds: tuple[PdsClient, Answering], body: Any, status: int, retry_after: str | None, raw: bytes | None, operation: str
) -> None:
    client, transport = pds
    transport.patient = patient_answer(body, status, retry_after, raw)
    try:
        result = await ask(client, operation)
    except ConnectorError as exc:
        assert NHS not in str(exc) and NHS not in repr(exc)
        return
    assert isinstance(result, RESULTS)
    assert NHS not in repr(result)


@FUZZ
@given(
    token=pds_shaped()
    | json_values
    | st.builds(lambda t, e: {"access_token": t, "expires_in": e}, st.text(max_size=20), scalars)
)
@example(token={"access_token": "t\n", "expires_in": "599"})
@example(token={"access_token": "t", "expires_in": "Infinity"})
@example(token={"access_token": "t", "expires_in": "NaN"})
@example(token={"access_token": "t", "expires_in": -5})
async def test_any_token_endpoint_answer_is_a_token_or_a_connector_error(
    pds: tuple[PdsClient, Answering], token: Any
) -> None:
    client, transport = pds
    client.tokens.invalidate()
    transport.token = lambda _r: httpx.Response(200, content=json.dumps(token).encode())
    transport.patient = lambda _r: httpx.Response(404)
    try:
        result = await ask(client, "verify")
    except ConnectorError:
        return
    finally:
        transport.token = Answering().token
        client.tokens.invalidate()
    assert isinstance(result, NotFound)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("30", 30.0),
        ("²", None),
        ("٣", None),
        ("1" + "0" * 20, 1e20),
        ("Mon, 01 Jan 2024 00:00:00 -0000", 0.0),
        ("-5", None),
        ("abc", None),
    ],
)
def test_retry_after_is_seconds_or_nothing(header: str, seconds: float | None) -> None:
    """Found by the fuzz above: ``²`` passed ``str.isdigit`` and failed ``float`` (ValueError), and a date in
    ``-0000`` (no zone, RFC 5322) came back naive and failed the subtraction (TypeError)."""
    assert retry_after_seconds(header) == seconds
