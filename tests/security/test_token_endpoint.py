"""The token endpoint beyond the attack list in test_tokens.py: EC clients, purpose of use, RFC 6749 errors for
malformed requests, disabled clients, the public URL behind a proxy, and what the issued token says."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import jwt
import orjson
import pytest

from gateway.app import create_app
from gateway.security.assertion import jwk_of, new_private_key
from gateway.security.clients import ApiClient, ClientError, add_client, disable_client, list_clients
from gateway.security.tokens import ISSUER
from gateway.store.migrate import upgrade
from tests.security.conftest import (
    ASSERTION_TYPE,
    TOKEN_URL,
    TRUST_KEY,
    Secured,
    school_assertion,
    secured_settings,
    trust_assertion,
)


async def test_an_ec_client_gets_a_token_with_its_organisation_and_purpose(secured: Secured) -> None:
    answer = await secured.ask(school_assertion(), purpose_of_use="administration")
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["scope"] == "system/Encounter.rs"  # no scope asked: everything the client may have
    claims = jwt.decode(
        body["access_token"],
        secured.app.state.signing_key.public_key(),
        algorithms=["RS256"],
        audience=ISSUER,
    )
    assert (claims["sub"], claims["org"], claims["org_type"]) == ("school-mis", "100001", "school")
    assert claims["purpose"] == "ADMINISTRATION"
    assert claims["exp"] - claims["iat"] == 300


async def test_the_granted_scope_is_what_was_asked_and_allowed(secured: Secured) -> None:
    answer = await secured.ask(trust_assertion(), scope="system/Patient.read system/Encounter.c system/Flag.rs")
    assert answer.json()["scope"] == "system/Patient.read system/Encounter.c"
    wider = await secured.ask(trust_assertion(), scope="system/*.rs")  # the client has no wildcard
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"grant_type": ""}, 400, "invalid_request"),
        ({"grant_type": "authorization_code"}, 400, "unsupported_grant_type"),
        ({"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"}, 401, "invalid_client"),
        ({"client_assertion": ""}, 401, "invalid_client"),
        ({"client_assertion": "not-a-jwt"}, 401, "invalid_client"),
        ({"purpose_of_use": "MARKETING"}, 400, "invalid_request"),
    ],
)
async def test_malformed_requests_get_rfc6749_errors(
    secured: Secured, form: dict[str, str], status: int, error: str
) -> None:
    answer = await secured.ask(trust_assertion(), **form)
    assert (answer.status_code, answer.json()["error"]) == (status, error), answer.text
    assert answer.json()["error_description"]
    assert ("www-authenticate" in answer.headers) == (status == 401)


async def test_an_empty_form_is_an_oauth_error_not_a_validation_error(secured: Secured) -> None:
    answer = await secured.http.post("/oauth2/token", data={})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


async def test_an_assertion_with_another_subject_is_refused(secured: Secured) -> None:
    answer = await secured.ask(trust_assertion(extra={"sub": "school-mis"}))
    assert answer.status_code == 401 and "sub" in answer.json()["error_description"]


@pytest.mark.parametrize("jti", [None, "", 1234, "x" * 256])
async def test_an_assertion_without_a_usable_jti_is_refused(secured: Secured, jti: object) -> None:
    claims = {"iss": "trust-ehr", "sub": "trust-ehr", "aud": TOKEN_URL, "exp": int(time.time()) + 60, "jti": jti}
    token = jwt.encode(
        {k: v for k, v in claims.items() if v is not None}, TRUST_KEY, algorithm="RS384", headers={"kid": "trust-1"}
    )
    answer = await secured.ask(token)
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client", answer.text


async def test_a_disabled_client_gets_no_token_but_its_registration_stays(secured: Secured) -> None:
    assert await disable_client(secured.app.state.engine, "school-mis")
    answer = await secured.ask(school_assertion())
    assert answer.status_code == 401 and "disabled" in answer.json()["error_description"]
    listed = {c.client_id: c.disabled for c in await list_clients(secured.app.state.engine)}
    assert listed == {"school-mis": True, "trust-ehr": False}
    assert not await disable_client(secured.app.state.engine, "nobody")


async def test_registration_refuses_what_it_must(secured: Secured) -> None:
    engine = secured.app.state.engine
    good = {"kty": "EC", "crv": "P-256", "kid": "x", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}  # fmt: skip
    cases = [
        ({"keys": [{**good, "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}]}, "public keys only"),
        ({"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}, "RSA or EC"),
        ({"keys": [{k: v for k, v in good.items() if k != "kid"}]}, "kid"),
        ({"keys": [good, good]}, "its own kid"),
        ({"keys": []}, "no keys"),
    ]
    for jwks, why in cases:
        with pytest.raises(ClientError, match=why):
            await add_client(engine, ApiClient("new", "New", "RX1", "nhs-provider", "system/*.rs", jwks, False))
    with pytest.raises(ClientError, match="already a client"):
        await add_client(engine, ApiClient("trust-ehr", "Again", "RX4", "icb", "system/*.rs", {"keys": [good]}, False))
    with pytest.raises(ClientError, match="organisation type"):
        await add_client(engine, ApiClient("new", "New", "RX1", "pharmacy", "system/*.rs", {"keys": [good]}, False))
    with pytest.raises(ClientError, match="system scope"):
        await add_client(engine, ApiClient("new", "New", "RX1", "icb", "openid launch", {"keys": [good]}, False))
    with pytest.raises(ClientError, match="client id"):
        await add_client(engine, ApiClient("a b", "New", "RX1", "icb", "system/*.rs", {"keys": [good]}, False))


async def test_behind_a_proxy_the_public_token_url_is_the_audience(tmp_path: Path) -> None:
    settings = secured_settings(tmp_path, base_url="https://gateway.example.nhs.uk/fhir")
    upgrade(settings, url=settings.resolved_database_url)
    app = create_app(settings)
    jwks = {"keys": [jwk_of(TRUST_KEY.public_key(), "trust-1")]}
    await add_client(app.state.engine, ApiClient("trust-ehr", "T", "RX4", "nhs-provider", "system/*.rs", jwks, False))
    public = "https://gateway.example.nhs.uk/oauth2/token"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://10.0.0.5:8080") as http:
        configuration = (await http.get("/.well-known/smart-configuration")).json()
        assert configuration["token_endpoint"] == public
        form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE}
        for aud, status in ((public, 200), ("http://10.0.0.5:8080/oauth2/token", 200), ("https://evil/t", 401)):
            answer = await http.post("/oauth2/token", data={**form, "client_assertion": trust_assertion(token_url=aud)})
            assert answer.status_code == status, (aud, answer.text)
    await app.state.engine.dispose()


async def test_smart_configuration_describes_backend_services(secured: Secured) -> None:
    configuration = (await secured.http.get("/.well-known/smart-configuration")).json()
    assert configuration["grant_types_supported"] == ["client_credentials"]
    assert configuration["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert {"RS384", "ES384"} <= set(configuration["token_endpoint_auth_signing_alg_values_supported"])
    assert "HS256" not in configuration["token_endpoint_auth_signing_alg_values_supported"]
    assert configuration["capabilities"] == ["client-confidential-asymmetric"]
    assert "system/*.rs" in configuration["scopes_supported"]


async def test_token_failures_are_audited_without_the_assertion(secured: Secured) -> None:
    await secured.app.state.audit.start()
    forged = trust_assertion(key=new_private_key())  # signed with a key the client never registered
    assert (await secured.ask(forged)).status_code == 401
    assert (await secured.http.get("/fhir/Patient/p1")).status_code == 401  # and a request without a token
    await secured.app.state.audit.flush()
    found = await secured.app.state.repository.search("AuditEvent", [("outcome", "4"), ("_sort", "date")])
    events = [orjson.loads(m.content) for m in found.matches]
    assert [e["outcomeDesc"].split(":")[:2] for e in events] == [
        ["token refused", " invalid_client"],
        ["token refused", " invalid_request"],
    ]
    assert all(forged not in orjson.dumps(e).decode() for e in events)
    await secured.app.state.audit.stop()
