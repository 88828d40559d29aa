"""A fake PDS (Personal Demographics Service) that speaks the PDS FHIR contract over HTTP (tests and the demo).

    python -m connectors.fake.pds_server --port 8556 --public-key public.pem [--api-key K] [--kid KID]

It serves, like NHS England's platform:

- ``POST /oauth2/token``: the client-credentials grant with a signed JWT client assertion, checked against the
  configured public key: RS512 only, ``kid`` must name the key, ``iss`` = ``sub`` = the API key, ``aud`` = this
  URL, ``jti`` a UUID never seen before, ``exp`` not passed and at most five minutes ahead. Malformed or expired
  assertions get 400 ``invalid_request``; a bad signature, unknown kid or unknown API key 401 ``invalid_client``.
- ``GET /personal-demographics/FHIR/R4/Patient/{nhs_number}``: retrieval (a merged number answers with the current
  record; a restricted record without address or GP; 404 for an unknown number, 400 for an invalid one);
- ``GET /personal-demographics/FHIR/R4/Patient?family=&birthdate=eq..&gender=[&given=][&address-postalcode=]``:
  a single-match trace (a searchset Bundle of 0 or 1 entries; an OperationOutcome TOO_MANY_MATCHES beyond one).

Every Patient call needs a valid bearer token (401) and an ``X-Request-ID`` UUID (400), and an application may
make ``rate_per_second`` calls in any one-second window (429 with ``Retry-After`` beyond). For tests:
``GET /_log`` (token and Patient calls, the request ids seen), ``POST /_faults`` with ``{"plan": ["500", "429:2"]}``
(the next Patient calls answer that way, in order), ``POST /_reset``.

The people are synthetic, with NHS numbers in the 999 range that pass the Modulus 11 check; nobody real.
"""

from __future__ import annotations

import argparse
import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from mappings.identifiers import NHS_NUMBER_SYSTEM, ODS_ORGANISATION_SYSTEM, is_nhs_number

FHIR_JSON = "application/fhir+json"
FHIR_BASE = "/personal-demographics/FHIR/R4"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
SPINE_ERRORS = "https://fhir.nhs.uk/R4/CodeSystem/Spine-ErrorOrWarningCode"
MAX_ASSERTION_AHEAD_SECONDS = 300

# The synthetic people (every number passes the Modulus 11 check).
JANE_SMITH = "9990000018"
TOM_JONES = "9990000026"
AMIR_KHAN = "9990000034"  # the current number of a merged record
MERGED_INTO_AMIR = "9990000042"  # superseded: answers with AMIR_KHAN's record
SAM_TAYLOR = "9990000050"  # restricted (meta.security R)
BROWN_TWIN_1 = "9990000069"  # the twins share family name, birth date and gender: a trace matches both
BROWN_TWIN_2 = "9990000077"
UNKNOWN = "9990000085"  # valid, but PDS has no such record


def _person(
    number: str,
    family: str,
    given: list[str],
    gender: str,
    birth_date: str,
    postcode: str,
    gp: str,
    *,
    restricted: bool = False,
) -> dict[str, Any]:
    label = {"system": CONFIDENTIALITY, "code": "R" if restricted else "U"}
    label["display"] = "restricted" if restricted else "unrestricted"
    return {
        "resourceType": "Patient",
        "id": number,
        "meta": {"versionId": "1", "security": [label]},
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": number}],
        "name": [{"use": "usual", "family": family, "given": given}],
        "gender": gender,
        "birthDate": birth_date,
        "address": [{"use": "home", "line": ["1 Synthetic Street", "Testville"], "postalCode": postcode}],
        "generalPractitioner": [
            {"type": "Organization", "identifier": {"system": ODS_ORGANISATION_SYSTEM, "value": gp}}
        ],
    }


def synthetic_people() -> dict[str, dict[str, Any]]:
    people = [
        _person(JANE_SMITH, "Smith", ["Jane", "Ann"], "female", "2010-10-22", "LS1 1AA", "Y12345"),
        _person(TOM_JONES, "Jones", ["Tom"], "male", "2012-03-04", "M1 2BB", "Y23456"),
        _person(AMIR_KHAN, "Khan", ["Amir"], "male", "2009-01-15", "B1 3CC", "Y34567"),
        _person(SAM_TAYLOR, "Taylor", ["Sam"], "unknown", "2011-07-30", "S1 4DD", "Y45678", restricted=True),
        _person(BROWN_TWIN_1, "Brown", ["Ella"], "female", "2015-06-01", "L1 5EE", "Y56789"),
        _person(BROWN_TWIN_2, "Brown", ["Isla"], "female", "2015-06-01", "L1 5EE", "Y56789"),
    ]
    return {p["id"]: p for p in people}


class FakePdsState:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.people = synthetic_people()
        self.merged = {MERGED_INTO_AMIR: AMIR_KHAN}
        self.tokens: dict[str, float] = {}  # access token -> expiry
        self.seen_jti: set[str] = set()
        self.calls: deque[float] = deque()
        self.reset()

    def reset(self) -> None:
        self.token_requests = 0
        self.patient_requests = 0
        self.request_ids: list[str] = []
        self.plan: list[str] = []


def _outcome(status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> JSONResponse:
    """An OperationOutcome as PDS writes it: its own error code in ``details.coding``."""
    coding = {"system": SPINE_ERRORS, "version": "1", "code": code, "display": message}
    issue = {"severity": "error", "code": "processing", "details": {"coding": [coding]}, "diagnostics": message}
    return JSONResponse(
        {"resourceType": "OperationOutcome", "issue": [issue]},
        status_code=status,
        media_type=FHIR_JSON,
        headers=headers,
    )


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _is_uuid(text: str | None) -> bool:
    try:
        uuid.UUID(str(text))
    except ValueError:
        return False
    return True


def _shown(patient: dict[str, Any]) -> dict[str, Any]:
    """A restricted record is served without address, telecom or GP (its location must not be disclosed)."""
    restricted = any(label.get("code") in ("R", "V") for label in patient["meta"]["security"])
    if not restricted:
        return patient
    return {k: v for k, v in patient.items() if k not in ("address", "telecom", "generalPractitioner")}


def create_app(
    public_key_pem: bytes | str,
    *,
    api_key: str = "fake-api-key",
    kid: str = "test-1",
    rate_per_second: int = 5,
    token_lifetime_seconds: int = 599,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The fake PDS, trusting one application (``api_key``) whose public key is ``public_key_pem`` under ``kid``."""
    pem = public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem
    public_key = serialization.load_pem_public_key(pem)
    if not isinstance(public_key, RSAPublicKey):
        raise ValueError("the fake PDS needs an RSA public key")
    app = FastAPI(title="Fake PDS")
    state = FakePdsState(clock)
    app.state.fake = state

    @app.post("/_faults")
    async def faults(request: Request) -> dict[str, Any]:
        body = await request.json()
        state.plan = [str(p) for p in body.get("plan", [])]
        return {"plan": state.plan}

    @app.post("/_reset")
    async def reset() -> dict[str, str]:
        state.reset()
        return {"status": "reset"}

    @app.get("/_log")
    async def fake_log() -> dict[str, Any]:
        return {
            "token_requests": state.token_requests,
            "patient_requests": state.patient_requests,
            "request_ids": state.request_ids,
        }

    @app.post("/oauth2/token")
    async def token(request: Request) -> Response:
        state.token_requests += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", "grant_type must be 'client_credentials'")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return _oauth_error(400, "invalid_request", f"client_assertion_type must be '{ASSERTION_TYPE}'")
        assertion = form.get("client_assertion")
        if not assertion:
            return _oauth_error(400, "invalid_request", "Missing client_assertion")
        audience = str(request.url.replace(query=""))
        return _check_assertion(state, assertion, public_key, api_key, kid, audience, token_lifetime_seconds)

    @app.get(FHIR_BASE + "/Patient/{nhs_number}")
    async def retrieve(nhs_number: str, request: Request) -> Response:
        refused = _gate(state, request, rate_per_second)
        if refused is not None:
            return refused
        if not is_nhs_number(nhs_number):
            return _outcome(400, "INVALID_RESOURCE_ID", "Resource Id is invalid")
        current = state.merged.get(nhs_number, nhs_number)
        patient = state.people.get(current)
        if patient is None:
            return _outcome(404, "RESOURCE_NOT_FOUND", "Resource not found")
        return JSONResponse(_shown(patient), media_type=FHIR_JSON, headers={"ETag": 'W/"1"'})

    @app.get(FHIR_BASE + "/Patient")
    async def search(request: Request) -> Response:
        refused = _gate(state, request, rate_per_second)
        if refused is not None:
            return refused
        query = request.query_params
        family, birthdate, gender = query.get("family"), query.get("birthdate"), query.get("gender")
        if not family or not birthdate or not gender:
            return _outcome(400, "INVALID_SEARCH_DATA", "family, birthdate and gender are required")
        birth = birthdate.removeprefix("eq")
        given = (query.get("given") or "").lower()
        postcode = (query.get("address-postalcode") or "").replace(" ", "").upper()
        matches = [
            p
            for p in state.people.values()
            if p["name"][0]["family"].lower() == family.lower()
            and p["birthDate"] == birth
            and p["gender"] == gender
            and (not given or any(g.lower().startswith(given) for g in p["name"][0]["given"]))
            and (not postcode or p["address"][0]["postalCode"].replace(" ", "") == postcode)
        ]
        if len(matches) > 1:
            return _outcome(200, "TOO_MANY_MATCHES", "Too Many Matches")
        base = str(request.url.replace(query="")).rstrip("/")
        entries = [{"fullUrl": f"{base}/{p['id']}", "search": {"score": 1}, "resource": _shown(p)} for p in matches]
        bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}
        return JSONResponse(bundle, media_type=FHIR_JSON)

    return app


def _check_assertion(
    state: FakePdsState,
    assertion: str,
    public_key: RSAPublicKey,
    api_key: str,
    kid: str,
    audience: str,
    lifetime: int,
) -> Response:
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.InvalidTokenError:
        return _oauth_error(400, "invalid_request", "Malformed JWT in client_assertion")
    if header.get("alg") != "RS512":
        return _oauth_error(400, "invalid_request", "Invalid 'alg' header in JWT - unsupported JWT algorithm")
    if not header.get("kid"):
        return _oauth_error(400, "invalid_request", "Missing 'kid' header in JWT")
    if header["kid"] != kid:
        return _oauth_error(401, "invalid_client", "Invalid 'kid' header in JWT - no matching public key")
    try:
        claims = jwt.decode(
            assertion,
            public_key,
            algorithms=["RS512"],
            audience=audience,
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["iss", "sub", "aud", "jti", "exp"],
            },
        )
    except jwt.InvalidSignatureError:
        return _oauth_error(401, "invalid_client", "Unable to verify JWT signature")
    except jwt.InvalidAudienceError:
        return _oauth_error(401, "invalid_request", "Invalid 'aud' claim in JWT")
    except jwt.InvalidTokenError as exc:
        return _oauth_error(400, "invalid_request", f"Invalid JWT: {type(exc).__name__}")
    now = state.clock()
    if not isinstance(claims["exp"], int | float) or claims["exp"] <= now:
        return _oauth_error(400, "invalid_request", "Invalid 'exp' claim in JWT - JWT has expired")
    if claims["exp"] > now + MAX_ASSERTION_AHEAD_SECONDS:
        return _oauth_error(400, "invalid_request", "Invalid 'exp' claim in JWT - more than 5 minutes in future")
    if claims["iss"] != claims["sub"]:
        return _oauth_error(400, "invalid_request", "Invalid 'iss'/'sub' claims in JWT")
    if claims["iss"] != api_key:
        return _oauth_error(401, "invalid_client", "Invalid 'iss'/'sub' claims in JWT - unknown API key")
    if not _is_uuid(claims["jti"]):
        return _oauth_error(400, "invalid_request", "Missing or non-uuid 'jti' claim in JWT")
    if claims["jti"] in state.seen_jti:
        return _oauth_error(400, "invalid_request", "Non-unique 'jti' claim in JWT")
    state.seen_jti.add(claims["jti"])
    access_token = uuid.uuid4().hex
    state.tokens[access_token] = now + lifetime
    return JSONResponse(
        {
            "access_token": access_token,
            "expires_in": str(lifetime),
            "token_type": "Bearer",
            "issued_at": str(int(now * 1000)),
        }
    )


def _gate(state: FakePdsState, request: Request, rate_per_second: int) -> Response | None:
    """The checks every Patient call passes first: request id, token, rate limit, then any planned fault."""
    state.patient_requests += 1
    request_id = request.headers.get("x-request-id")
    if request_id is None:
        return _outcome(400, "MISSING_VALUE", "Invalid request with error - X-Request-ID header must be supplied")
    if not _is_uuid(request_id):
        return _outcome(400, "INVALID_VALUE", "Invalid value - X-Request-ID header must be a UUID")
    state.request_ids.append(request_id)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    now = state.clock()
    if scheme.lower() != "bearer" or state.tokens.get(token, -math.inf) <= now:
        return _outcome(401, "ACCESS_DENIED", "Access Denied - Unauthorised")
    while state.calls and state.calls[0] <= now - 1.0:
        state.calls.popleft()
    if len(state.calls) >= rate_per_second:
        wait = max(1, math.ceil(state.calls[0] + 1.0 - now))
        return _outcome(429, "TOO_MANY_REQUESTS", "Too many requests", headers={"Retry-After": str(wait)})
    state.calls.append(now)
    if state.plan:
        step = state.plan.pop(0)
        if step.startswith("429"):
            wait_s = step.split(":", 1)[1] if ":" in step else "1"
            return _outcome(429, "TOO_MANY_REQUESTS", "Too many requests", headers={"Retry-After": wait_s})
        if step in ("500", "502", "503"):
            return _outcome(int(step), "SERVICE_UNAVAILABLE", "The service is having a bad day")
    return None


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="A fake PDS FHIR API (application-restricted) for tests and demos")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8556)
    parser.add_argument("--public-key", type=Path, required=True, help="PEM file of the application's public key")
    parser.add_argument("--api-key", default="fake-api-key")
    parser.add_argument("--kid", default="test-1")
    parser.add_argument("--rate", type=int, default=5, help="Patient calls allowed per second")
    args = parser.parse_args()
    app = create_app(args.public_key.read_bytes(), api_key=args.api_key, kid=args.kid, rate_per_second=args.rate)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
