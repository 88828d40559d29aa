"""Tokens from an external OpenID Connect issuer: its key set served in-process over real HTTP (PyJWKClient
fetches with urllib), tokens accepted only with the right issuer, audience, key and claims."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any, cast

import jwt
import pytest

from gateway.security.assertion import jwk_of, new_private_key
from gateway.security.oidc import ExternalIssuer, ExternalTokens, configured_issuer, external_claims
from gateway.security.tokens import AccessClaims, TokenError
from gateway.settings import Settings
from tests.security.conftest import Secured

ISSUER = "https://login.example.nhs.uk/realms/ics"
AUDIENCE = "keyworking-gateway"
KEY = new_private_key()
ROTATED = new_private_key()


class IssuerKeys:
    """An issuer's JWKS endpoint on a free local port; counts fetches; its key set can be changed (rotation)."""

    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": [jwk_of(KEY.public_key(), "ext-1")]}
        self.fetches = 0
        keys = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                keys.fetches += 1
                body = json.dumps(keys.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/certs"


@pytest.fixture
def issuer_keys() -> Iterator[IssuerKeys]:
    keys = IssuerKeys()
    thread = threading.Thread(target=keys.server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield keys
    keys.server.shutdown()
    keys.server.server_close()
    thread.join()


def external_token(key: Any = KEY, kid: str = "ext-1", algorithm: str = "RS256", **changes: Any) -> str:
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "service-account-la",
        "azp": "la-social-care",
        "exp": int(time.time()) + 300,
        "org": "E08000026",
        "org_type": "local-authority",
        "scope": "openid system/Encounter.rs",
        **changes,
    }
    return jwt.encode(
        {k: v for k, v in claims.items() if v is not None}, key, algorithm=algorithm, headers={"kid": kid}
    )


@pytest.fixture
def with_issuer(secured: Secured, issuer_keys: IssuerKeys) -> Secured:
    secured.app.state.external_tokens = ExternalTokens(ExternalIssuer(ISSUER, issuer_keys.url, AUDIENCE))
    return secured


async def test_an_external_token_is_a_caller_with_its_organisation_and_scopes(
    with_issuer: Secured, issuer_keys: IssuerKeys
) -> None:
    headers = {"Authorization": f"Bearer {external_token()}"}
    assert (await with_issuer.http.get("/fhir/Encounter", headers=headers)).status_code == 200
    assert (await with_issuer.http.get("/fhir/Patient", headers=headers)).status_code == 403  # no Patient scope
    assert (await with_issuer.http.get("/fhir/Encounter", headers=headers)).status_code == 200
    assert issuer_keys.fetches == 1  # the key set is kept between requests


async def test_the_gateways_own_tokens_still_work_beside_an_issuer(with_issuer: Secured) -> None:
    from tests.security.conftest import trust_assertion

    own = await with_issuer.token(trust_assertion(), scope="system/Patient.rs")
    assert (await with_issuer.http.get("/fhir/Patient", headers={"Authorization": f"Bearer {own}"})).status_code == 200


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (lambda: external_token(aud="another-api"), "not valid"),
        (lambda: external_token(exp=int(time.time()) - 120), "expired"),
        (lambda: external_token(key=new_private_key()), "not valid"),  # right kid, wrong key
        (lambda: external_token(kid="ext-unknown"), "not valid"),
        (lambda: external_token(key="a-shared-secret-of-thirty-two-bytes!", algorithm="HS256"), "not valid"),
        (lambda: external_token(org=None), "no organisation"),
        (lambda: external_token(org_type="pharmacy"), "org_type"),
        (lambda: external_token(scope=""), "no scope"),
        (lambda: external_token(iss="https://elsewhere.example/"), "not valid"),  # not the issuer: our key fails it
    ],
)
async def test_external_tokens_are_refused_when_they_must_be(with_issuer: Secured, token: Any, why: str) -> None:
    answer = await with_issuer.http.get("/fhir/Encounter", headers={"Authorization": f"Bearer {token()}"})
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]
    assert why in answer.json()["issue"][0]["diagnostics"]


def test_a_rotated_key_is_fetched_when_a_token_names_it(issuer_keys: IssuerKeys) -> None:
    tokens = ExternalTokens(ExternalIssuer(ISSUER, issuer_keys.url, AUDIENCE), refetch_after=0)
    assert tokens.verify(external_token()).organisation == "E08000026"
    issuer_keys.jwks = {"keys": [jwk_of(ROTATED.public_key(), "ext-2")]}
    assert tokens.verify(external_token(key=ROTATED, kid="ext-2")).client_id == "la-social-care"
    assert issuer_keys.fetches == 2


def test_unknown_key_ids_do_not_make_the_gateway_flood_the_issuer(issuer_keys: IssuerKeys) -> None:
    tokens = ExternalTokens(ExternalIssuer(ISSUER, issuer_keys.url, AUDIENCE))
    tokens.verify(external_token())
    for n in range(5):
        with pytest.raises(TokenError, match="not valid"):
            tokens.verify(external_token(kid=f"made-up-{n}"))
    assert issuer_keys.fetches == 1  # within the 30 s refetch pause: the cached set answers


def test_an_unreachable_key_set_refuses_the_token() -> None:
    tokens = ExternalTokens(ExternalIssuer(ISSUER, "http://127.0.0.1:9/certs", AUDIENCE), timeout=2)
    with pytest.raises(TokenError, match="could not be fetched"):
        tokens.verify(external_token())


def test_external_claims_map_to_the_gateways_caller() -> None:
    base = {"sub": "s", "org": "RX4", "org_type": "nhs-provider"}
    assert external_claims({**base, "client_id": "c", "azp": "a", "scp": ["system/Patient.rs"]}) == AccessClaims(
        "c", "RX4", "nhs-provider", "system/Patient.rs", "DIRECT_CARE"
    )
    assert external_claims({**base, "scope": "system/*.rs", "purpose": "audit"}).purpose == "AUDIT"
    with pytest.raises(TokenError, match="purpose"):
        external_claims({**base, "scope": "system/*.rs", "purpose": "MARKETING"})


def test_an_issuer_is_configured_whole_or_not_at_all() -> None:
    def settings(**values: str | None) -> Settings:
        fields = {"oidc_issuer": None, "oidc_jwks_url": None, "oidc_audience": None, "env": "development"}
        return cast(Settings, SimpleNamespace(**{**fields, **values}))

    assert configured_issuer(settings()) is None
    assert configured_issuer(settings(oidc_issuer=ISSUER, oidc_jwks_url="http://k/certs", oidc_audience="a")) == (
        ExternalIssuer(ISSUER, "http://k/certs", "a")
    )
    with pytest.raises(ValueError, match="set together"):
        configured_issuer(settings(oidc_issuer=ISSUER))
    with pytest.raises(ValueError, match="https"):
        configured_issuer(
            settings(oidc_issuer=ISSUER, oidc_jwks_url="http://k/certs", oidc_audience="a", env="production")
        )
