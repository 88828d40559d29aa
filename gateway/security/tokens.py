"""Client assertions in, access tokens out (SMART Backend Services), and checking an access token on each request.

A client assertion is a JWT the client signs with its private key: ``iss`` = ``sub`` = the client id, ``aud`` = the
token endpoint's URL, ``exp`` at most five minutes ahead, a ``jti`` never seen before, ``kid`` naming one of the
client's registered keys, and an asymmetric algorithm (RS384 or ES384 as SMART recommends; RS256, RS512, ES256
too). ``alg: none`` and HMAC algorithms are refused. The access token is a JWT the gateway signs (RS256) for
``token_lifetime_seconds``: the client, its organisation and type, the granted scopes and the purpose of use.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt import PyJWK
from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.security.clients import CLIENT_ID, ApiClient, get_client
from gateway.security.tables import used_assertion
from gateway.store.db import begin_write

ASSERTION_ALGORITHMS = ("RS384", "ES384", "RS256", "RS512", "ES256")
MAX_ASSERTION_LIFETIME = 300
MAX_JTI_LENGTH = 255  # the used_assertion.jti column
ISSUER = "keyworking-gateway"
#: Purposes of use a token may declare (``purpose_of_use`` at the token endpoint); recorded on every audit entry.
PURPOSES = frozenset({"DIRECT_CARE", "ADMINISTRATION", "AUDIT", "RESEARCH", "EMERGENCY"})


class TokenError(Exception):
    """An OAuth2 error: ``error`` is the RFC 6749 code (invalid_client, invalid_grant, invalid_scope...)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True, slots=True)
class AccessClaims:
    client_id: str
    organisation: str
    organisation_type: str
    scopes: str
    purpose: str
    #: When the access token expires (epoch seconds); 0 for claims not read from a token.
    expires_at: int = field(default=0, compare=False)


async def verify_assertion(engine: AsyncEngine, assertion: str, token_url: str | Sequence[str]) -> ApiClient:
    """The registered client a valid assertion comes from; TokenError (invalid_client, 401) otherwise.

    ``token_url`` is the token endpoint's URL, or the URLs it is known by: ``aud`` must name one of them."""
    audiences = [token_url] if isinstance(token_url, str) else list(token_url)
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenError("invalid_client", "the client assertion is not a JWT", 401) from None
    if header.get("alg") not in ASSERTION_ALGORITHMS:
        raise TokenError("invalid_client", f"the assertion's alg must be one of {', '.join(ASSERTION_ALGORITHMS)}", 401)
    client_id = unverified.get("iss")
    # Only a well-formed client id is looked up: JSON can carry NUL and lone surrogates, which neither database
    # takes (a server error, not a 401, before this check).
    known = isinstance(client_id, str) and CLIENT_ID.fullmatch(client_id) is not None
    client = await get_client(engine, str(client_id)) if known else None
    if client is None or client.disabled:
        raise TokenError("invalid_client", "unknown or disabled client", 401)
    keys = [k for k in client.jwks.get("keys", []) if k.get("kid") == header.get("kid")]
    if not keys:
        raise TokenError("invalid_client", "the assertion's kid names none of the client's keys", 401)
    try:
        claims = jwt.decode(
            assertion,
            PyJWK(keys[0]).key,
            algorithms=[header["alg"]],
            audience=audiences,
            issuer=client.client_id,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("invalid_client", "the client assertion has expired", 401) from None
    except jwt.InvalidAudienceError:
        raise TokenError("invalid_client", f"the assertion's aud must be {audiences[0]}", 401) from None
    except jwt.PyJWTError as exc:
        raise TokenError("invalid_client", f"the client assertion is not valid: {type(exc).__name__}", 401) from None
    if not _is_jti(claims["jti"]):
        raise TokenError("invalid_client", f"the assertion's jti must be a string of 1 to {MAX_JTI_LENGTH}", 401)
    if claims.get("sub") != client.client_id:
        raise TokenError("invalid_client", "the assertion's sub must be the client id", 401)
    if claims["exp"] > time.time() + MAX_ASSERTION_LIFETIME + 30:
        raise TokenError("invalid_client", "the assertion expires too far ahead (at most five minutes)", 401)
    await _use_once(engine, str(claims["jti"]), client.client_id, int(claims["exp"]))
    return client


def _is_jti(value: object) -> bool:
    """A jti we can remember: a string of 1 to MAX_JTI_LENGTH characters that is text (no lone surrogates)."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_JTI_LENGTH:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def assertion_key(client_id: str, jti: str) -> str:
    """The key under which a used assertion is remembered: its ``jti`` is unique per issuing client (RFC 7523), so
    one client's identifiers never block another's. A digest, so any jti fits the column."""
    return hashlib.sha256(f"{client_id}\x00{jti}".encode()).hexdigest()


async def _use_once(engine: AsyncEngine, jti: str, client_id: str, expires: int) -> None:
    key = assertion_key(client_id, jti)
    conn = await begin_write(engine)
    try:
        async with conn.begin():
            await conn.execute(delete(used_assertion).where(used_assertion.c.expires_at < int(time.time()) - 60))
            await conn.execute(insert(used_assertion).values(jti=key, client_id=client_id, expires_at=expires))
    except IntegrityError:
        raise TokenError("invalid_client", "this client assertion (jti) was already used", 401) from None
    finally:
        await conn.close()


def issue_access_token(key: rsa.RSAPrivateKey, claims: AccessClaims, lifetime: int) -> str:
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "aud": ISSUER,
        "sub": claims.client_id,
        "iat": now,
        "exp": now + lifetime,
        "jti": str(uuid.uuid4()),
        "org": claims.organisation,
        "org_type": claims.organisation_type,
        "scope": claims.scopes,
        "purpose": claims.purpose,
    }
    return jwt.encode(payload, key, algorithm="RS256")


def verify_access_token(key: rsa.RSAPrivateKey, token: str) -> AccessClaims:
    try:
        claims = jwt.decode(
            token,
            key.public_key(),
            algorithms=["RS256"],
            audience=ISSUER,
            issuer=ISSUER,
            options={"require": ["exp", "sub", "scope", "org", "org_type", "purpose"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("invalid_token", "the access token has expired", 401) from None
    except jwt.PyJWTError:
        raise TokenError("invalid_token", "the access token is not valid", 401) from None
    return AccessClaims(
        str(claims["sub"]),
        str(claims["org"]),
        str(claims["org_type"]),
        str(claims["scope"]),
        str(claims["purpose"]),
        int(claims["exp"]),
    )
