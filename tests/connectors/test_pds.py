"""The PDS connector against the fake PDS: in-process over ASGI on a fake clock, and once as a real process.

The tests make their own RSA key pair; the fake trusts its public half. The fake clock serves the client (token
expiry, rate limiter) and the fake (token lifetimes, its own rate limit) alike, and its sleep moves time on, so
nothing here waits for real.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from connectors.base import ConfigurationError, PermanentError, TransientError
from connectors.fake import pds_server as fake
from connectors.pds import (
    NoMatch,
    NotFound,
    PdsClient,
    PdsConfig,
    Restricted,
    Superseded,
    TooManyMatches,
    Traced,
    Verified,
)
from connectors.pds.auth import CLIENT_ASSERTION_TYPE
from connectors.pds.client import FHIR_JSON
from connectors.pds.rate import JITTER_MARGIN_SECONDS, RateLimiter
from tests.servers import _free_port, _wait_port

BASE = "http://pds.test"
ENDPOINT = f"{BASE}/personal-demographics/FHIR/R4"
TOKEN_URL = f"{BASE}/oauth2/token"
API_KEY = "app-key-4f1c9e"
KID = "kwg-test-1"
START = 1_800_000_000.0


def _pem_pair(key: rsa.RSAPrivateKey) -> tuple[str, str]:
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return _pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def other_private_key() -> str:
    return _pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))[0]


class FakeClock:
    """Seconds that move only when someone sleeps (or a test says so)."""

    def __init__(self, start: float = START) -> None:
        self.now = start
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        self.slept += max(seconds, 0.0)
        await asyncio.sleep(0)


class Recording(httpx.AsyncBaseTransport):
    """Passes requests to another transport and keeps them, to see what the client sent."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


def _config(private_pem: str, **changes: Any) -> PdsConfig:
    fields: dict[str, Any] = {
        "endpoint": ENDPOINT,
        "token_url": TOKEN_URL,
        "api_key": SecretStr(API_KEY),
        "kid": KID,
        "private_key_pem": SecretStr(private_pem),
    }
    fields.update(changes)
    return PdsConfig.model_validate(fields)


class Pds:
    """A client wired to an in-process fake PDS, sharing one fake clock."""

    def __init__(self, keys: tuple[str, str], *, client_clock: FakeClock | None = None, **changes: Any) -> None:
        private_pem, public_pem = keys
        self.clock = FakeClock()
        self.app = fake.create_app(public_pem, api_key=API_KEY, kid=KID, clock=self.clock)
        self.state: fake.FakePdsState = self.app.state.fake
        self.transport = Recording(httpx.ASGITransport(app=self.app))
        clock = client_clock or self.clock
        self.client = PdsClient(
            _config(private_pem, **changes), transport=self.transport, now=clock, clock=clock, sleep=clock.sleep
        )

    @property
    def patient_requests(self) -> list[httpx.Request]:
        return [r for r in self.transport.requests if "/Patient" in r.url.path]


@pytest.fixture
async def pds(keys: tuple[str, str]) -> AsyncIterator[Pds]:
    wired = Pds(keys)
    yield wired
    await wired.client.aclose()


# --- results ---------------------------------------------------------------------------------------------------


async def test_a_known_number_is_verified_with_current_demographics(pds: Pds) -> None:
    result = await pds.client.verify(fake.JANE_SMITH)
    assert isinstance(result, Verified)
    person = result.demographics
    assert result.nhs_number == fake.JANE_SMITH
    assert (person.family, person.given, person.gender) == ("Smith", ("Jane", "Ann"), "female")
    assert person.birth_date == date(2010, 10, 22)
    assert (person.postcode, person.gp_ods_code) == ("LS1 1AA", "Y12345")


async def test_a_number_written_with_spaces_is_verified(pds: Pds) -> None:
    spaced = f"{fake.TOM_JONES[:3]} {fake.TOM_JONES[3:6]} {fake.TOM_JONES[6:]}"
    result = await pds.client.verify(spaced)
    assert isinstance(result, Verified) and result.nhs_number == fake.TOM_JONES


async def test_a_merged_number_is_superseded_by_the_current_one(pds: Pds) -> None:
    result = await pds.client.verify(fake.MERGED_INTO_AMIR)
    assert isinstance(result, Superseded)
    assert result.requested == fake.MERGED_INTO_AMIR
    assert result.nhs_number == fake.AMIR_KHAN
    assert result.demographics.family == "Khan"


async def test_an_unknown_number_is_not_found_rather_than_an_error(pds: Pds) -> None:
    result = await pds.client.verify(fake.UNKNOWN)
    assert isinstance(result, NotFound) and result.requested == fake.UNKNOWN


async def test_a_restricted_record_keeps_only_the_nhs_number(pds: Pds) -> None:
    result = await pds.client.verify(fake.SAM_TAYLOR)
    assert isinstance(result, Restricted)
    assert result.nhs_number == fake.SAM_TAYLOR and result.superseded_from is None
    assert set(Restricted.__dataclass_fields__) == {"nhs_number", "superseded_from"}
    assert fake.SAM_TAYLOR not in repr(result) and "Taylor" not in repr(result)


async def test_an_invalid_number_is_refused_before_calling_pds(pds: Pds) -> None:
    with pytest.raises(ValueError, match="Modulus 11") as caught:
        await pds.client.verify("9990000019")
    assert "9990000019" not in str(caught.value)
    assert pds.transport.requests == []


async def test_a_trace_finds_one_person(pds: Pds) -> None:
    result = await pds.client.search("smith", date(2010, 10, 22), "female")
    assert isinstance(result, Traced) and isinstance(result.match, Verified)
    assert result.nhs_number == fake.JANE_SMITH and result.score == 1.0
    sent = pds.patient_requests[-1].url.params
    assert (sent["family"], sent["birthdate"], sent["gender"]) == ("smith", "eq2010-10-22", "female")


async def test_a_trace_of_a_restricted_person_gives_the_number_only(pds: Pds) -> None:
    result = await pds.client.search("Taylor", date(2011, 7, 30), "unknown")
    assert isinstance(result, Traced) and isinstance(result.match, Restricted)
    assert result.nhs_number == fake.SAM_TAYLOR


async def test_a_trace_matching_nobody_or_several(pds: Pds) -> None:
    assert isinstance(await pds.client.search("Smith", date(2010, 10, 23), "female"), NoMatch)
    assert isinstance(await pds.client.search("Brown", date(2015, 6, 1), "female"), TooManyMatches)
    narrowed = await pds.client.search("Brown", date(2015, 6, 1), "female", given="Isla")
    assert isinstance(narrowed, Traced) and narrowed.nhs_number == fake.BROWN_TWIN_2


async def test_a_trace_with_an_unknown_gender_is_refused(pds: Pds) -> None:
    with pytest.raises(ValueError, match="gender"):
        await pds.client.search("Smith", date(2010, 10, 22), "F")


# --- tokens and headers ----------------------------------------------------------------------------------------


async def test_every_call_carries_a_fresh_request_id_and_the_bearer_token(pds: Pds) -> None:
    await pds.client.verify(fake.JANE_SMITH)
    await pds.client.verify(fake.UNKNOWN)
    await pds.client.search("Jones", date(2012, 3, 4), "male")
    sent = pds.patient_requests
    ids = [r.headers["X-Request-ID"] for r in sent]
    assert len(sent) == 3 and len(set(ids)) == 3
    assert all(str(uuid.UUID(i)) == i for i in ids)
    assert {r.headers["Authorization"] for r in sent} == {f"Bearer {next(iter(pds.state.tokens))}"}
    assert pds.state.request_ids == ids


async def test_the_client_assertion_is_what_the_token_endpoint_expects(pds: Pds, keys: tuple[str, str]) -> None:
    await pds.client.verify(fake.JANE_SMITH)
    token_call = next(r for r in pds.transport.requests if r.url.path == "/oauth2/token")
    form = dict(httpx.QueryParams(token_call.content.decode()))
    assert form["grant_type"] == "client_credentials" and form["client_assertion_type"] == CLIENT_ASSERTION_TYPE
    header = jwt.get_unverified_header(form["client_assertion"])
    assert (header["alg"], header["kid"]) == ("RS512", KID)
    claims = jwt.decode(
        form["client_assertion"],
        keys[1],
        algorithms=["RS512"],
        audience=TOKEN_URL,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == claims["sub"] == API_KEY
    assert uuid.UUID(claims["jti"])
    assert START < claims["exp"] <= START + 300


async def test_one_token_serves_many_calls(pds: Pds) -> None:
    results = list(await asyncio.gather(*(pds.client.verify(fake.TOM_JONES) for _ in range(8))))  # all at once
    results += [await pds.client.verify(fake.JANE_SMITH) for _ in range(12)]
    assert all(isinstance(r, Verified) for r in results)
    assert pds.state.token_requests == 1 and pds.client.tokens.fetches == 1


async def test_the_token_is_renewed_shortly_before_it_expires(pds: Pds) -> None:
    await pds.client.verify(fake.JANE_SMITH)
    pds.clock.now += 500  # the token (599 s) has 99 s left: still used
    await pds.client.verify(fake.JANE_SMITH)
    assert pds.state.token_requests == 1
    pds.clock.now += 75  # 24 s left, within the 30 s margin: renewed before the server would refuse it
    await pds.client.verify(fake.JANE_SMITH)
    assert pds.state.token_requests == 2
    pds.clock.now += 10_000  # long expired
    assert isinstance(await pds.client.verify(fake.JANE_SMITH), Verified)
    assert pds.state.token_requests == 3


async def test_a_token_refused_before_its_time_is_renewed_once(pds: Pds) -> None:
    await pds.client.verify(fake.JANE_SMITH)
    pds.state.tokens.clear()  # the platform revoked it
    assert isinstance(await pds.client.verify(fake.JANE_SMITH), Verified)
    assert pds.state.token_requests == 2


# --- failures --------------------------------------------------------------------------------------------------


async def test_429_is_transient_with_the_wait_pds_asked_for(pds: Pds) -> None:
    pds.state.plan = ["429:7"]
    with pytest.raises(TransientError) as caught:
        await pds.client.verify(fake.JANE_SMITH)
    assert (caught.value.status, caught.value.retry_after) == (429, 7.0)


async def test_the_fake_refuses_a_client_faster_than_5_per_second(keys: tuple[str, str]) -> None:
    greedy = Pds(keys, rate_per_second=10)  # the client's own limiter allows 10/s; PDS allows 5
    try:
        for _ in range(5):
            await greedy.client.verify(fake.JANE_SMITH)
        with pytest.raises(TransientError) as caught:
            await greedy.client.verify(fake.JANE_SMITH)
        assert caught.value.status == 429 and caught.value.retry_after == 1.0
        greedy.clock.now += 1.0
        assert isinstance(await greedy.client.verify(fake.JANE_SMITH), Verified)
    finally:
        await greedy.client.aclose()


@pytest.mark.parametrize("status", ["500", "502", "503"])
async def test_5xx_is_transient(pds: Pds, status: str) -> None:
    pds.state.plan = [status]
    with pytest.raises(TransientError) as caught:
        await pds.client.search("Smith", date(2010, 10, 22), "female")
    assert caught.value.status == int(status)
    assert isinstance(await pds.client.search("Smith", date(2010, 10, 22), "female"), Traced)


async def test_a_key_pds_does_not_know_is_a_clear_configuration_error(
    keys: tuple[str, str], other_private_key: str
) -> None:
    wrong = Pds((other_private_key, keys[1]))
    try:
        with pytest.raises(ConfigurationError, match=r"401 invalid_client.*signature.*public key matches") as caught:
            await wrong.client.verify(fake.JANE_SMITH)
        assert API_KEY not in str(caught.value)
        assert wrong.patient_requests == []
    finally:
        await wrong.client.aclose()


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"kid": "retired-key"}, "401 invalid_client.*kid"),
        ({"api_key": SecretStr("someone-else")}, "401 invalid_client.*API key"),
        ({"token_url": "http://pds.test/oauth2/token-elsewhere"}, "404"),
    ],
)
async def test_wrong_credentials_are_configuration_errors(
    keys: tuple[str, str], changes: dict[str, Any], expected: str
) -> None:
    wrong = Pds(keys, **changes)
    try:
        with pytest.raises(ConfigurationError, match=expected):
            await wrong.client.check()
    finally:
        await wrong.client.aclose()


async def test_a_client_clock_far_behind_makes_an_expired_assertion(keys: tuple[str, str]) -> None:
    late = Pds(keys, client_clock=FakeClock(START - 3600))
    try:
        with pytest.raises(ConfigurationError, match="400 invalid_request.*expired"):
            await late.client.verify(fake.JANE_SMITH)
    finally:
        await late.client.aclose()


def test_a_private_key_that_is_not_pem_fails_when_the_client_is_built() -> None:
    with pytest.raises(ConfigurationError, match="not a readable") as caught:
        PdsClient(_config("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"))
    assert "not a key" not in str(caught.value)


def test_a_missing_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    config = _config("x", private_key_pem=None, private_key_path=tmp_path / "absent.pem")
    with pytest.raises(ConfigurationError, match="cannot be read"):
        PdsClient(config)


def test_exactly_one_private_key_is_configured(tmp_path: Path, keys: tuple[str, str]) -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        _config(keys[0], private_key_path=tmp_path / "key.pem")
    with pytest.raises(ValidationError, match="exactly one"):
        _config(keys[0], private_key_pem=None)
    assert API_KEY not in repr(_config(keys[0])) and "PRIVATE KEY" not in repr(_config(keys[0]))


async def test_a_token_endpoint_that_is_down_is_transient(keys: tuple[str, str]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "30"})

    client = PdsClient(_config(keys[0]), transport=httpx.MockTransport(handler))
    try:
        with pytest.raises(TransientError) as caught:
            await client.verify(fake.JANE_SMITH)
        assert (caught.value.status, caught.value.retry_after) == (503, 30.0)
    finally:
        await client.aclose()


async def test_a_2xx_that_is_not_a_patient_is_transient(keys: tuple[str, str]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": "599"})
        return httpx.Response(200, json={"resourceType": "OperationOutcome", "issue": []})

    client = PdsClient(_config(keys[0]), transport=httpx.MockTransport(handler))
    try:
        with pytest.raises(TransientError, match="unexpected body"):
            await client.verify(fake.JANE_SMITH)
    finally:
        await client.aclose()


async def test_a_token_refused_twice_is_a_configuration_error(keys: tuple[str, str]) -> None:
    token_calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal token_calls
        if request.url.path == "/oauth2/token":
            token_calls += 1
            return httpx.Response(200, json={"access_token": f"t{token_calls}", "expires_in": "599"})
        return httpx.Response(401, json={"resourceType": "OperationOutcome", "issue": []})

    client = PdsClient(_config(keys[0]), transport=httpx.MockTransport(handler))
    try:
        with pytest.raises(ConfigurationError, match="refused a fresh access token"):
            await client.verify(fake.JANE_SMITH)
        assert token_calls == 2
    finally:
        await client.aclose()


async def test_a_refusal_is_permanent_with_pds_error_code_and_no_nhs_number(keys: tuple[str, str]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": "599"})
        outcome = fake._outcome(400, "INVALID_RESOURCE_ID", "Resource Id is invalid")
        return httpx.Response(400, content=outcome.body, headers={"Content-Type": FHIR_JSON})

    client = PdsClient(_config(keys[0]), transport=httpx.MockTransport(handler))
    try:
        with pytest.raises(PermanentError) as caught:
            await client.verify(fake.JANE_SMITH)
        assert (caught.value.status, caught.value.detail) == (400, "INVALID_RESOURCE_ID")
        assert fake.JANE_SMITH not in str(caught.value)
    finally:
        await client.aclose()


# --- the fake's own contract -----------------------------------------------------------------------------------


async def test_the_fake_requires_a_request_id_and_a_token(pds: Pds) -> None:
    token = await pds.client.tokens.token()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=pds.app), base_url=BASE) as http:
        url = f"/personal-demographics/FHIR/R4/Patient/{fake.JANE_SMITH}"
        missing = await http.get(url, headers={"Authorization": f"Bearer {token}"})
        assert missing.status_code == 400
        assert missing.json()["issue"][0]["details"]["coding"][0]["code"] == "MISSING_VALUE"
        not_uuid = await http.get(url, headers={"Authorization": f"Bearer {token}", "X-Request-ID": "abc"})
        assert not_uuid.status_code == 400
        anonymous = await http.get(url, headers={"X-Request-ID": str(uuid.uuid4())})
        assert anonymous.status_code == 401
        invalid = await http.get(
            "/personal-demographics/FHIR/R4/Patient/9990000019",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": str(uuid.uuid4())},
        )
        assert invalid.json()["issue"][0]["details"]["coding"][0]["code"] == "INVALID_RESOURCE_ID"


async def test_the_fake_refuses_replayed_and_long_lived_assertions(pds: Pds, keys: tuple[str, str]) -> None:
    def assertion(**claims: Any) -> str:
        base = {"iss": API_KEY, "sub": API_KEY, "aud": TOKEN_URL, "jti": str(uuid.uuid4()), "exp": int(START) + 60}
        return jwt.encode({**base, **claims}, keys[0], algorithm="RS512", headers={"kid": KID})

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=pds.app), base_url=BASE) as http:

        async def post(jwt_text: str, **form: str) -> httpx.Response:
            body = {"grant_type": "client_credentials", "client_assertion_type": CLIENT_ASSERTION_TYPE}
            return await http.post("/oauth2/token", data={**body, "client_assertion": jwt_text, **form})

        once = assertion()
        assert (await post(once)).status_code == 200
        replayed = await post(once)
        assert replayed.status_code == 400 and "jti" in replayed.json()["error_description"]
        assert (await post(assertion(exp=int(START) + 600))).status_code == 400
        assert (await post(assertion(jti="not-a-uuid"))).status_code == 400
        assert (await post(assertion(aud="http://elsewhere/oauth2/token"))).status_code == 401
        assert (await post(assertion(), grant_type="password")).json()["error"] == "unsupported_grant_type"
        hs = jwt.encode({"iss": API_KEY}, "a-shared-secret-long-enough-for-hs512-" * 2, algorithm="HS512")
        assert (await post(hs)).status_code == 400


# --- rate limiting ---------------------------------------------------------------------------------------------


async def _grant_times(limit: int, gaps: list[float]) -> list[float]:
    clock = FakeClock(0.0)
    limiter = RateLimiter(limit, clock=clock, sleep=clock.sleep)
    granted = []
    for gap in gaps:
        clock.now += gap
        granted.append(await limiter.acquire())
    return granted


def _most_in_any_window(times: list[float]) -> int:
    """The most grants in any half-open one-second window [t, t + 1)."""
    ordered = sorted(times)
    return max((sum(1 for u in ordered if t <= u < t + 1.0) for t in ordered), default=0)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=8),
    st.lists(st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=1.5)), min_size=1, max_size=60),
)
def test_never_more_than_n_calls_in_any_second(limit: int, gaps: list[float]) -> None:
    granted = asyncio.run(_grant_times(limit, gaps))
    assert _most_in_any_window(granted) <= limit
    assert granted == sorted(granted)  # in arrival order


async def test_a_burst_goes_at_the_limit_and_no_slower() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(5, clock=clock, sleep=clock.sleep)
    granted = await asyncio.gather(*(limiter.acquire() for _ in range(23)))
    assert _most_in_any_window(list(granted)) == 5
    # 23 calls at 5 a second: the last in the fifth window, no later (each window a second plus the jitter margin)
    assert clock.now == pytest.approx(4 * (1.0 + JITTER_MARGIN_SECONDS))


async def test_the_client_stays_within_5_per_second_of_pds(pds: Pds) -> None:
    results = await asyncio.gather(*(pds.client.verify(fake.JANE_SMITH) for _ in range(16)))
    assert all(isinstance(r, Verified) for r in results)  # the fake (5/s) never had to refuse one
    assert pds.clock.slept >= 3.0


# --- nothing personal or secret in the logs --------------------------------------------------------------------


async def test_logs_carry_no_nhs_number_name_or_secret(
    pds: Pds, keys: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await pds.client.verify(fake.JANE_SMITH)
    await pds.client.verify(fake.MERGED_INTO_AMIR)
    await pds.client.verify(fake.SAM_TAYLOR)
    await pds.client.verify(fake.UNKNOWN)
    await pds.client.search("Smith", date(2010, 10, 22), "female", postcode="LS1 1AA")
    pds.state.plan = ["429:2"]
    with pytest.raises(TransientError) as caught:
        await pds.client.verify(fake.TOM_JONES)
    text = caplog.text + str(caught.value)
    assert "PDS answered Verified" in text and "/Patient/[redacted]" in text  # the log is not simply empty
    secrets = [API_KEY, *pds.state.tokens, *keys[0].splitlines()[1:-1], "eyJ"]
    personal = [fake.JANE_SMITH, fake.MERGED_INTO_AMIR, fake.AMIR_KHAN, fake.SAM_TAYLOR, fake.UNKNOWN]
    personal += [fake.TOM_JONES, "Smith", "Khan", "Taylor", "LS1", "2010-10-22"]
    leaked = [s for s in secrets + personal if s in text]
    assert leaked == []


# --- the fake as a real process over HTTP ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_pds_process(keys: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("pds")
    (folder / "public.pem").write_text(keys[1])
    (folder / "private.pem").write_text(keys[0])
    port = _free_port()
    command = [sys.executable, "-m", "connectors.fake.pds_server", "--port", str(port)]
    command += ["--public-key", str(folder / "public.pem"), "--api-key", API_KEY, "--kid", KID]
    log = folder / "fake-pds.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        if not _wait_port(port):
            raise RuntimeError(f"the fake PDS did not start: {log.read_text()}")
        yield f"http://127.0.0.1:{port}", folder / "private.pem"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.integration
async def test_against_the_fake_as_a_real_process(fake_pds_process: tuple[str, Path]) -> None:
    base, key_file = fake_pds_process
    config = _config(
        "unused",
        endpoint=f"{base}/personal-demographics/FHIR/R4",
        token_url=f"{base}/oauth2/token",
        private_key_pem=None,
        private_key_path=key_file,
    )
    client = PdsClient(config)
    try:
        started = time.monotonic()
        verified = await client.verify(fake.JANE_SMITH)
        assert isinstance(verified, Verified) and verified.demographics.family == "Smith"
        assert isinstance(await client.verify(fake.MERGED_INTO_AMIR), Superseded)
        assert isinstance(await client.verify(fake.UNKNOWN), NotFound)
        assert isinstance(await client.search("Brown", date(2015, 6, 1), "female"), TooManyMatches)
        results = await asyncio.gather(*(client.verify(fake.SAM_TAYLOR) for _ in range(7)))
        assert all(isinstance(r, Restricted) for r in results)  # 11 calls at 5/s: the real limiter waited
        assert time.monotonic() - started >= 1.0
        assert client.tokens.fetches == 1
        log = httpx.get(f"{base}/_log").json()
        assert (log["token_requests"], log["patient_requests"]) == (1, 11)
    finally:
        await client.aclose()
