"""``POST /oauth2/token`` (client credentials with a signed client assertion) and
``GET /.well-known/smart-configuration``."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from gateway.security.scopes import grant
from gateway.security.tokens import (
    ASSERTION_ALGORITHMS,
    PURPOSES,
    AccessClaims,
    TokenError,
    issue_access_token,
    verify_assertion,
)

router = APIRouter(tags=["Authentication"])
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def token_url(request: Request) -> str:
    """The token endpoint's public URL: under ``KWG_BASE_URL`` (the FHIR base, e.g. ``https://gw.example/fhir``)
    when it is set, as clients behind a TLS-terminating proxy see it; else the URL this request came to."""
    configured = request.app.state.settings.base_url
    if configured:
        return str(configured).rstrip("/").removesuffix("/fhir") + "/oauth2/token"
    return str(request.base_url).rstrip("/") + "/oauth2/token"


def token_urls(request: Request) -> list[str]:
    """The audiences an assertion may name: the public token URL and the URL the request came to (they differ
    behind a proxy; either identifies this endpoint)."""
    direct = str(request.base_url).rstrip("/") + "/oauth2/token"
    return list(dict.fromkeys([token_url(request), direct]))


def _error(exc: TokenError) -> Response:
    body = orjson.dumps({"error": exc.error, "error_description": exc.description})
    headers = {"Cache-Control": "no-store"}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_client"'
    return Response(body, status_code=exc.status, media_type="application/json", headers=headers)


@router.post("/oauth2/token", summary="Client credentials with a private_key_jwt client assertion")
async def token(
    request: Request,
    grant_type: Annotated[str, Form()] = "",
    client_assertion_type: Annotated[str, Form()] = "",
    client_assertion: Annotated[str, Form()] = "",
    scope: Annotated[str, Form()] = "",
    purpose_of_use: Annotated[str, Form()] = "DIRECT_CARE",
) -> Response:
    try:
        if not grant_type:
            raise TokenError("invalid_request", "grant_type is required (client_credentials)")
        if grant_type != "client_credentials":
            raise TokenError("unsupported_grant_type", "only client_credentials is supported")
        if client_assertion_type != ASSERTION_TYPE or not client_assertion:
            raise TokenError("invalid_client", f"authenticate with client_assertion_type {ASSERTION_TYPE}", 401)
        engine = request.app.state.engine
        client = await verify_assertion(engine, client_assertion, token_urls(request))
        granted = grant(scope or client.scopes, client.scopes)
        if not granted:
            raise TokenError("invalid_scope", "none of the requested scopes is allowed for this client")
        purpose = purpose_of_use.upper()
        if purpose not in PURPOSES:
            raise TokenError("invalid_request", f"purpose_of_use must be one of {', '.join(sorted(PURPOSES))}")
    except TokenError as exc:
        request.app.state.audit.record_token_failure(exc.error, exc.description)
        return _error(exc)
    settings = request.app.state.settings
    claims = AccessClaims(client.client_id, client.organisation, client.organisation_type, granted, purpose)
    access = issue_access_token(request.app.state.signing_key, claims, settings.token_lifetime_seconds)
    body = {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": settings.token_lifetime_seconds,
        "scope": granted,
    }
    return Response(orjson.dumps(body), media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get("/.well-known/smart-configuration", summary="SMART configuration (backend services)")
async def smart_configuration(request: Request) -> Response:
    body = {
        "token_endpoint": token_url(request),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": ["system/*.read", "system/*.write", "system/*.rs", "system/*.cruds"],
        "capabilities": ["client-confidential-asymmetric"],
    }
    return Response(orjson.dumps(body), media_type="application/json")
