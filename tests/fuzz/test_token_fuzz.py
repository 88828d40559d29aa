"""``POST /oauth2/token`` from the outside, fuzzed, on SQLite and PostgreSQL: arbitrary strings as the client
assertion, JWTs whose header and claims are arbitrary JSON (unsigned, wrongly signed, and signed with a registered
client's own key, which reaches the claim checks), and arbitrary form fields.

Every answer is an RFC 6749 error (400 or 401, JSON ``error`` from the spec's list, ``Cache-Control: no-store``) or a
token for a valid request; never a server error.
"""

from __future__ import annotations

import base64
import json
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jwt.algorithms import RSAAlgorithm

from gateway.app import create_app
from gateway.security.assertion import jwk_of
from gateway.security.clients import ApiClient, add_client
from gateway.settings import Settings
from gateway.store.migrate import upgrade
from tests.conftest import _POSTGRES, DIALECTS
from tests.processes import scratch_postgres_database
from tests.security.conftest import ASSERTION_TYPE, BASE, TOKEN_URL, TRUST_KEY

ERRORS = {"invalid_request", "invalid_client", "invalid_grant", "unsupported_grant_type", "invalid_scope"}
FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module", params=DIALECTS)
def token_db(request: pytest.FixtureRequest) -> Iterator[tuple[Path, str]]:
    home = Path(tempfile.mkdtemp(prefix="kwg-token-fuzz-"))
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{home}/auth.db"
        upgrade(Settings(home=home, database_url=url, auth="on"), url=url)  # type: ignore[arg-type]
        yield home, url
        return
    if _POSTGRES.url is None:
        pytest.skip(f"PostgreSQL tests not run: {_POSTGRES.reason}")
    with scratch_postgres_database(_POSTGRES.url) as url:
        upgrade(Settings(home=home, database_url=url, auth="on"), url=url)  # type: ignore[arg-type]
        yield home, url


@pytest.fixture(scope="module")
async def gateway(token_db: tuple[Path, str]) -> AsyncIterator[httpx.AsyncClient]:
    home, url = token_db
    app = create_app(Settings(home=home, database_url=url, auth="on", rate_limit_per_minute=1_000_000))  # type: ignore[arg-type]
    jwks = {"keys": [jwk_of(TRUST_KEY.public_key(), "trust-1")]}
    client = ApiClient("trust-ehr", "Trust EHR", "RX4", "nhs-provider", "system/Patient.rs", jwks, False)
    await add_client(app.state.engine, client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield http
    await app.state.engine.dispose()


async def ask(http: httpx.AsyncClient, **form: str) -> httpx.Response:
    data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, **form}
    return await http.post("/oauth2/token", data=data)


def assert_oauth_answer(answer: httpx.Response) -> None:
    assert answer.headers["cache-control"] == "no-store"
    if answer.status_code == 200:
        assert answer.json()["token_type"] == "bearer"
        return
    assert answer.status_code in (400, 401), answer.text
    assert answer.json()["error"] in ERRORS


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_text(header: object, claims: object, *, signed: bool) -> str:
    """A compact JWT over JSON written as given (NaN, Infinity and lone surrogates included, as a sender may)."""
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims).encode())
    signing_input = f"{head}.{body}".encode()
    signature = RSAAlgorithm(RSAAlgorithm.SHA384).sign(signing_input, TRUST_KEY) if signed else b"not-a-signature"
    return f"{head}.{body}.{b64(signature)}"


# Strings with what JSON can carry and databases may not: NUL, lone surrogates, very long text.
odd_text = st.text(
    alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=30
) | st.sampled_from(["\x00", "trust-ehr\x00", "\ud800", "trust-\udfff", "x" * 5000, ""])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | odd_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(odd_text, inner, max_size=3),
    max_leaves=6,
)


def good_claims() -> dict[str, Any]:
    now = int(time.time())
    return {"iss": "trust-ehr", "sub": "trust-ehr", "aud": TOKEN_URL, "exp": now + 120, "jti": str(uuid.uuid4())}


@FAST
@given(assertion=st.text(max_size=200) | st.text("abc.=-_", max_size=60) | st.just("a.b.c"))
async def test_any_string_as_the_assertion_is_an_oauth_error(gateway: httpx.AsyncClient, assertion: str) -> None:
    assert_oauth_answer(await ask(gateway, client_assertion=assertion or "x"))


@FAST
@given(header=json_values, claims=json_values, signed=st.booleans())
@example(header={"alg": "RS384", "kid": "trust-1"}, claims={"iss": "trust-\ud800"}, signed=False)
@example(header={"alg": "RS384", "kid": "trust-1"}, claims={"iss": "trust-ehr\x00"}, signed=False)
@example(header={"alg": ["RS384"], "kid": {"a": 1}}, claims=[], signed=False)
async def test_any_header_and_claims_are_an_oauth_error(
    gateway: httpx.AsyncClient, header: object, claims: object, signed: bool
) -> None:
    answer = await ask(gateway, client_assertion=jwt_text(header, claims, signed=signed))
    assert_oauth_answer(answer)
    assert answer.status_code != 200


@FAST
@given(changes=st.dictionaries(st.sampled_from(["iss", "sub", "aud", "exp", "jti", "nbf", "iat"]), json_values))
@example(changes={"exp": float("inf")})
@example(changes={"exp": float("nan")})
@example(changes={"jti": "\ud800"})
@example(changes={"jti": "a\x00b"})
@example(changes={"nbf": float("inf")})
@example(changes={"iat": float("-inf")})
async def test_signed_assertions_with_any_claim_values_are_answered(
    gateway: httpx.AsyncClient, changes: dict[str, Any]
) -> None:
    """Signed with the registered key, so the claim checks behind the signature check are reached."""
    claims = good_claims() | changes
    assertion = jwt_text({"alg": "RS384", "kid": "trust-1", "typ": "JWT"}, claims, signed=True)
    assert_oauth_answer(await ask(gateway, client_assertion=assertion))


@FAST
@given(
    grant_type=st.text(max_size=30) | st.just("client_credentials"),
    scope=st.text(max_size=60) | st.just("system/Patient.rs"),
    purpose=st.text(max_size=20) | st.sampled_from(["direct_care", "Emergency"]),
)
async def test_any_form_fields_are_answered(
    gateway: httpx.AsyncClient, grant_type: str, scope: str, purpose: str
) -> None:
    assertion = jwt_text({"alg": "RS384", "kid": "trust-1"}, good_claims(), signed=True)
    form = {"grant_type": grant_type, "client_assertion": assertion, "scope": scope, "purpose_of_use": purpose}
    assert_oauth_answer(await ask(gateway, **form))


@FAST
@given(
    authorization=st.text(max_size=120).map(lambda t: "Bearer " + t)
    | st.builds(lambda h, c: "Bearer " + jwt_text(h, c, signed=False), json_values, json_values)
    | st.text(max_size=40)
)
async def test_any_bearer_token_on_a_request_is_401(gateway: httpx.AsyncClient, authorization: str) -> None:
    """The token each request carries is parsed too: anything but a token the gateway issued is 401."""
    try:
        headers = httpx.Headers({"Authorization": authorization})
    except (UnicodeEncodeError, ValueError):
        return  # not something HTTP can carry
    answer = await gateway.get("/fhir/Patient", headers=headers)
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"].startswith("Bearer")
