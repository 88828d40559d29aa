"""The caller dependency with authentication on: 401 with WWW-Authenticate for a missing, forged or expired token,
403 when the scopes do not allow the interaction, and KWG_AUTH=off only in development, said loudly."""

from __future__ import annotations

import logging
from pathlib import Path

import jwt
import pytest
from pydantic import ValidationError

from gateway.app import create_app
from gateway.auth import DEVELOPMENT_CALLER, Caller
from gateway.errors import Forbidden
from gateway.security.assertion import new_private_key
from gateway.security.dependency import require, required_access
from gateway.security.tokens import ISSUER, AccessClaims, issue_access_token
from gateway.settings import Settings
from tests.security.conftest import Secured, school_assertion, secured_settings, trust_assertion

TRUST = AccessClaims("trust-ehr", "RX4", "nhs-provider", "system/Patient.rs", "DIRECT_CARE")


@pytest.mark.parametrize("authorization", ["", "Basic dXNlcjpwYXNz", "Bearer ", "Bearer not.a.token"])
async def test_no_valid_bearer_token_is_401_with_a_challenge(secured: Secured, authorization: str) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    answer = await secured.http.get("/fhir/Patient", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith('Bearer realm="keyworking-gateway"')
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert answer.json()["issue"][0]["code"] == "login"


async def test_an_expired_or_forged_access_token_is_401_invalid_token(secured: Secured) -> None:
    own_key = secured.app.state.signing_key
    expired = issue_access_token(own_key, TRUST, lifetime=-120)
    forged = issue_access_token(new_private_key(), TRUST, lifetime=300)  # right claims, someone else's key
    unsigned = jwt.encode({"iss": ISSUER, "aud": ISSUER, "sub": "trust-ehr", "scope": "system/*.cruds"}, None, "none")
    for token, why in ((expired, "expired"), (forged, "not valid"), (unsigned, "not valid")):
        answer = await secured.http.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, why
        assert 'error="invalid_token"' in answer.headers["www-authenticate"]
        assert why in answer.json()["issue"][0]["diagnostics"]


async def test_scopes_decide_each_interaction(secured: Secured) -> None:
    school = {"Authorization": f"Bearer {await secured.token(school_assertion())}"}  # system/Encounter.rs
    assert (await secured.http.get("/fhir/Encounter", headers=school)).status_code == 200
    for method, path in (("GET", "/fhir/Patient"), ("GET", "/fhir/Patient/x"), ("DELETE", "/fhir/Encounter/x")):
        answer = await secured.http.request(method, path, headers=school)
        assert answer.status_code == 403, (method, path)
        assert answer.json()["issue"][0]["code"] == "forbidden"
    created = await secured.http.post("/fhir/Encounter", json={"resourceType": "Encounter"}, headers=school)
    assert created.status_code == 403
    assert (await secured.http.get("/api/v1/people", headers=school)).status_code == 403  # people are Patients
    trust = {"Authorization": f"Bearer {await secured.token(trust_assertion(), scope='system/Patient.rs')}"}
    assert (await secured.http.get("/fhir/Patient", headers=trust)).status_code == 200
    assert (await secured.http.get("/admin/deliveries", headers=trust)).status_code == 403  # admin needs system/*


def test_require_is_the_scope_check_other_code_calls() -> None:
    caller = Caller("school-mis", "100001", "DIRECT_CARE", frozenset({"system/Encounter.rs", "system/Flag.read"}))
    require(caller, "Encounter", "search")
    require(caller, "Flag", "read")
    for res_type, interaction in (("Encounter", "create"), ("Patient", "read"), ("*", "read")):
        with pytest.raises(Forbidden, match=f"do not allow {interaction} on {res_type.replace('*', '[*]')}"):
            require(caller, res_type, interaction)
    require(DEVELOPMENT_CALLER, "*", "delete")  # the development caller may do everything


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("GET", "/fhir/Patient/1", ("Patient", "read")),
        ("GET", "/fhir/Patient", ("Patient", "search")),
        ("POST", "/fhir/Patient/_search", ("Patient", "search")),
        ("POST", "/fhir/Patient", ("Patient", "create")),
        ("PUT", "/fhir/Patient/1", ("Patient", "update")),
        ("DELETE", "/fhir/Patient/1", ("Patient", "delete")),
        ("POST", "/fhir", ("*", "create")),
        ("GET", "/fhir/_history", ("*", "read")),
        ("GET", "/api/v1/people/p1", ("Patient", "read")),
        ("POST", "/api/v1/cases", ("EpisodeOfCare", "create")),
        ("GET", "/admin/deliveries", ("*", "read")),
        ("GET", "/health/ready", None),
    ],
)
def test_what_a_request_needs(method: str, path: str, needed: tuple[str, str] | None) -> None:
    assert required_access(method, path) == needed


def test_auth_off_is_refused_outside_development(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="KWG_AUTH=off is refused in production"):
        Settings(home=tmp_path, env="production", auth="off")  # type: ignore[arg-type]


def test_auth_off_in_development_is_logged_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        create_app(Settings(home=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/g.db", auth="off"))  # type: ignore[arg-type]
    loud = [r for r in caplog.records if "KWG_AUTH=off" in r.getMessage()]
    assert len(loud) == 1 and loud[0].levelno == logging.WARNING


def test_production_without_its_signing_key_does_not_start(tmp_path: Path) -> None:
    from gateway.security.keys import SigningKeyError

    with pytest.raises(SigningKeyError, match="production needs its own key"):
        create_app(secured_settings(tmp_path, env="production"))
    with pytest.raises(SigningKeyError, match="does not exist"):  # a configured key that is not there: refused too
        create_app(secured_settings(tmp_path, token_signing_key=tmp_path / "missing.pem"))
