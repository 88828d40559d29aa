"""Authentication end to end (auth on, in-process over HTTP, SQLite): a registered client gets a token with a signed
assertion and uses it; every token attack is refused; scopes are enforced; production refuses what it must."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.app import create_app
from gateway.security.assertion import client_assertion, new_private_key, public_jwk
from gateway.security.clients import ApiClient, add_client
from gateway.security.keys import SigningKeyError, load_signing_key
from gateway.security.scopes import allows, grant
from gateway.settings import Settings
from gateway.store.migrate import upgrade

TOKEN_URL = "http://gateway.test/oauth2/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
KEY = new_private_key()


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    url = f"sqlite+aiosqlite:///{tmp_path}/auth.db"
    settings = Settings(home=tmp_path, database_url=url, auth="on")  # type: ignore[arg-type]
    upgrade(settings, url=url)
    app = create_app(settings)
    await add_client(
        app.state.engine,
        ApiClient(
            "trust-ehr",
            "Trust EHR",
            "RX4",
            "nhs-provider",
            "system/Patient.rs system/Encounter.rs",
            {"keys": [public_jwk(KEY, "k1")]},
            False,
        ),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as client:
        yield client
    await app.state.engine.dispose()


async def ask(client: httpx.AsyncClient, assertion: str, **form: str) -> httpx.Response:
    data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    return await client.post("/oauth2/token", data={**data, **form})


def assertion(**changes: Any) -> str:
    args: dict[str, Any] = {"client_id": "trust-ehr", "token_url": TOKEN_URL, "kid": "k1"}
    args.update(changes)
    return client_assertion(
        changes.pop("key", KEY) if "key" in changes else KEY, **{k: v for k, v in args.items() if k != "key"}
    )


async def test_a_client_gets_a_token_and_uses_it(gateway: httpx.AsyncClient) -> None:
    configuration = (await gateway.get("/.well-known/smart-configuration")).json()
    assert configuration["token_endpoint"] == TOKEN_URL
    assert "private_key_jwt" in configuration["token_endpoint_auth_methods_supported"]
    answer = await ask(gateway, assertion(), scope="system/Patient.read")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 300 and body["scope"] == "system/Patient.read"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert (await gateway.get("/fhir/Patient/nobody", headers=headers)).status_code == 404  # authenticated: 404
    refused = await gateway.get("/fhir/Encounter", headers=headers)  # the token only has Patient.read
    assert refused.status_code == 403
    assert (
        await gateway.put("/fhir/Patient/x", json={"resourceType": "Patient", "id": "x"}, headers=headers)
    ).status_code == 403


async def test_no_token_is_401_with_www_authenticate(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/fhir/Patient/x")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert (await gateway.get("/fhir/Patient/x", headers={"Authorization": "Bearer not.a.token"})).status_code == 401
    assert (await gateway.get("/fhir/metadata")).status_code == 200  # the CapabilityStatement is public


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: assertion(token_url="http://elsewhere.test/oauth2/token"), "aud"),
        (lambda: assertion(lifetime=-60), "expired"),
        (lambda: assertion(lifetime=3600), "too far ahead"),
        (lambda: assertion(kid="k-unknown"), "kid"),
        (lambda: assertion(key=new_private_key()), "not valid"),
        (lambda: assertion(client_id="nobody"), "unknown"),
        (
            lambda: jwt.encode(
                {"iss": "trust-ehr", "sub": "trust-ehr", "aud": TOKEN_URL, "exp": int(time.time()) + 60, "jti": "h"},
                "an-hmac-secret-of-at-least-thirty-two-bytes",
                algorithm="HS256",
                headers={"kid": "k1"},
            ),
            "alg",
        ),
        (
            lambda: jwt.encode(
                {"iss": "trust-ehr", "sub": "trust-ehr", "aud": TOKEN_URL, "exp": int(time.time()) + 60, "jti": "n"},
                None,
                algorithm="none",
                headers={"kid": "k1"},
            ),
            "alg",
        ),
        (lambda: assertion()[:-4] + "AAAA", "not valid"),  # tampered signature
    ],
)
async def test_token_attacks_are_refused(gateway: httpx.AsyncClient, make: Any, why: str) -> None:
    answer = await ask(gateway, make())
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "invalid_client"
    assert why in answer.json()["error_description"]


async def test_a_replayed_assertion_is_refused(gateway: httpx.AsyncClient) -> None:
    once = assertion()
    assert (await ask(gateway, once)).status_code == 200
    again = await ask(gateway, once)
    assert again.status_code == 401 and "already used" in again.json()["error_description"]


async def test_scopes_outside_the_client_are_not_granted(gateway: httpx.AsyncClient) -> None:
    answer = await ask(gateway, assertion(), scope="system/Condition.read")
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_scope"
    assert (await ask(gateway, assertion(), grant_type="password")).json()["error"] == "unsupported_grant_type"


def test_v1_and_v2_scopes_agree() -> None:
    for res_type in ("Patient", "CareTeam"):
        for interaction, v2 in (("read", "r"), ("search", "s"), ("create", "c"), ("update", "u"), ("delete", "d")):
            v1 = "read" if v2 in "rs" else "write"
            assert allows(f"system/{res_type}.{v1}", res_type, interaction)
            assert allows(f"system/{res_type}.{v2}", res_type, interaction)
            assert allows("system/*.cruds", res_type, interaction) and allows("system/*.*", res_type, interaction)
    assert not allows("system/Patient.rs", "Patient", "update")
    assert grant("system/Patient.read system/Condition.read", "system/Patient.rs") == "system/Patient.read"


@given(st.sampled_from(["Patient", "Encounter", "*"]), st.sets(st.sampled_from("cruds"), min_size=1))
def test_a_granted_scope_never_exceeds_what_is_allowed(res_type: str, rights: set[str]) -> None:
    requested = f"system/{res_type}.{''.join(c for c in 'cruds' if c in rights)}"
    granted = grant(requested, "system/Patient.rs")
    for interaction in ("create", "read", "update", "delete", "search"):
        for target in ("Patient", "Encounter"):
            if allows(granted, target, interaction):
                assert allows("system/Patient.rs", target, interaction)


def test_production_refuses_auth_off_and_a_missing_signing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KWG_AUTH")  # the default, not the test suite's
    with pytest.raises(ValidationError, match="KWG_AUTH=off is refused in production"):
        Settings(home=tmp_path, env="production", auth="off")  # type: ignore[arg-type]
    production = Settings(home=tmp_path, env="production")  # type: ignore[arg-type]
    assert production.auth_on and Settings(home=tmp_path).auth_on  # on by default everywhere
    with pytest.raises(SigningKeyError, match="production needs its own key"):
        load_signing_key(production)
    development = Settings(home=tmp_path)  # type: ignore[arg-type]
    load_signing_key(development)  # made on first use
    assert (tmp_path / "token-signing-key.pem").stat().st_mode & 0o077 == 0


def test_an_ec_key_assertion_is_accepted_by_the_library_path() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    token = client_assertion(key, client_id="c", token_url=TOKEN_URL, kid="e1", algorithm="ES384")
    assert jwt.get_unverified_header(token)["alg"] == "ES384"
