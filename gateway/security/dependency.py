"""The caller dependency with authentication on: a bearer token from ``/oauth2/token`` becomes the Caller, and its
SMART scopes must allow what the request does.

What a request does is read from its method and path: ``GET /fhir/Encounter/1`` reads Encounter, ``GET
/fhir/Encounter`` searches it, ``POST``/``PUT``/``DELETE`` create, update and delete; the domain API's collections
stand for their main resource types (``/api/v1/people`` → Patient); a Bundle needs write access to every type;
the operations API (``/admin``) needs ``system/*`` access. ``/fhir/metadata`` is public. Code that knows better
what it touches (a Bundle entry, an operation) calls :func:`require` with the caller it was given.

A bearer token is either the gateway's own (from ``/oauth2/token``) or, when an external OpenID Connect issuer is
configured, one of that issuer's (:mod:`gateway.security.oidc`); the ``iss`` claim decides which key checks it.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Request

from gateway.auth import Caller
from gateway.errors import Forbidden, NotAuthenticated
from gateway.security.keys import load_signing_key
from gateway.security.oidc import ExternalTokens, external_tokens_for
from gateway.security.scopes import allows
from gateway.security.tokens import AccessClaims, TokenError, verify_access_token
from gateway.security.verified import VerifiedTokens

COLLECTIONS = {
    "people": "Patient",
    "register-entries": "EpisodeOfCare",
    "cases": "EpisodeOfCare",
    "care-teams": "CareTeam",
    "contacts": "Encounter",
    "reviews": "Encounter",
    "recommendations": "Task",
    "tasks": "Task",
}
PUBLIC = frozenset({"/fhir/metadata"})
ANONYMOUS = Caller(client_id="anonymous", organisation="NONE", purpose="DIRECT_CARE", organisation_type="none")


def signing_key(request: Request) -> rsa.RSAPrivateKey:
    key: rsa.RSAPrivateKey | None = getattr(request.app.state, "signing_key", None)
    if key is None:
        key = request.app.state.signing_key = load_signing_key(request.app.state.settings)
    return key


def external_tokens(request: Request) -> ExternalTokens | None:
    """The configured external issuer's verifier (made once per app, so its key set is cached), or None."""
    state = request.app.state
    if not hasattr(state, "external_tokens"):  # create_app normally sets it; made here on first use otherwise
        state.external_tokens = external_tokens_for(state.settings)
    verifier: ExternalTokens | None = state.external_tokens
    return verifier


def verified_tokens(request: Request) -> VerifiedTokens:
    """This app's memory of tokens already verified (made on first use)."""
    state = request.app.state
    if not hasattr(state, "verified_tokens"):
        state.verified_tokens = VerifiedTokens()
    verified: VerifiedTokens = state.verified_tokens
    return verified


def verified_claims(request: Request, token: str) -> AccessClaims:
    """The claims of a valid bearer token, the gateway's own or the external issuer's; TokenError otherwise.

    An external issuer's key set is fetched at most every five minutes (or on a key it has not seen); that fetch
    blocks this worker for up to its timeout, which is why the verifier is kept for the app's life."""
    verified = verified_tokens(request)
    claims = verified.get(token)
    if claims is not None:
        return claims
    external = external_tokens(request)
    if external is not None and external.accepts(token):
        claims = external.verify(token)
    else:
        claims = verify_access_token(signing_key(request), token)
    verified.put(token, claims)
    return claims


def require(caller: Caller, res_type: str, interaction: str) -> None:
    """Forbidden (403) unless the caller's scopes allow ``interaction`` (create, read, update, delete, search) on
    ``res_type`` (a resource type, or ``*`` for every type)."""
    if not allows(" ".join(sorted(caller.scopes)), res_type, interaction):
        raise Forbidden(
            f"the token's scopes ({' '.join(sorted(caller.scopes))}) do not allow {interaction} on {res_type}"
        )


def required_access(method: str, path: str) -> tuple[str, str] | None:
    """(resource type or *, interaction) a request needs, or None when it needs no scope."""
    parts = [p for p in path.split("/") if p]
    write = {"POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}.get(method)
    if parts[:1] == ["fhir"]:
        rest = parts[1:]
        if not rest:
            return ("*", "create")  # a batch or transaction Bundle: write access to everything
        res_type = rest[0]
        if res_type.startswith("$") or res_type == "_history":
            return ("*", "read")
        if len(rest) > 1 and rest[-1].startswith("$validate"):
            return None
        if write == "create" and len(rest) > 1 and rest[1] == "_search":
            return (res_type, "search")
        if write is not None:
            return (res_type, write)
        return (res_type, "read" if len(rest) > 1 else "search")
    if parts[:2] == ["api", "v1"] and len(parts) > 2:
        res_type = COLLECTIONS.get(parts[2], "*")
        if write is not None:
            return (res_type, "create" if write == "create" and len(parts) == 3 else "update")
        return (res_type, "read" if len(parts) > 3 else "search")
    if parts[:1] == ["admin"]:
        return ("*", "update" if write else "read")
    return None


def authenticated_caller(request: Request) -> Caller:
    """The Caller a valid bearer token stands for, if its scopes allow the request (401 / 403 otherwise)."""
    if request.url.path in PUBLIC:
        return ANONYMOUS
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        request.app.state.audit.record_token_failure("invalid_request", "no bearer token")
        raise NotAuthenticated(
            "a bearer token is required: get one from /oauth2/token (see /.well-known/smart-configuration)",
            headers={"WWW-Authenticate": 'Bearer realm="keyworking-gateway"'},
        )
    try:
        claims = verified_claims(request, token.strip())
    except TokenError as exc:
        request.app.state.audit.record_token_failure(exc.error, exc.description)
        raise NotAuthenticated(
            exc.description,
            headers={"WWW-Authenticate": f'Bearer realm="keyworking-gateway", error="{exc.error}"'},
        ) from None
    caller = Caller(
        client_id=claims.client_id,
        organisation=claims.organisation,
        purpose=claims.purpose,
        scopes=frozenset(claims.scopes.split()),
        organisation_type=claims.organisation_type,
    )
    needed = required_access(request.method, request.url.path)
    if needed is not None:
        require(caller, *needed)
    return caller
