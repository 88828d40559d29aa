"""Application-restricted authentication to NHS England APIs: a signed client assertion swapped for an access token.

The connector signs a short-lived JWT with its private key (RS512; header ``kid`` names the registered public
key; ``iss`` = ``sub`` = the API key, ``aud`` = the token URL, a fresh ``jti`` each time, ``exp`` at most five
minutes ahead) and posts it to the token endpoint with the client-credentials grant. The access token that comes
back is reused until shortly before it expires: one token call serves many PDS calls, and concurrent callers wait
for the same renewal rather than each asking for a token.

A refusal from the token endpoint (400/401) means the credentials are wrong (key, kid, API key, clock), so it is a
``ConfigurationError``; an overloaded or failing endpoint is a ``TransientError``. Secrets never reach a message.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from pydantic import SecretStr

from connectors.base import ConfigurationError, TransientError, classify, send

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SIGNING_ALGORITHM = "RS512"
#: The token endpoint refuses an assertion whose ``exp`` is more than 300 s ahead; four minutes leaves room for
#: our clock running a little ahead of theirs.
ASSERTION_LIFETIME_SECONDS = 240


def load_private_key(pem: SecretStr) -> RSAPrivateKey:
    """The RSA private key from PEM text; a ConfigurationError (without the key's text) when it is not one."""
    try:
        key = serialization.load_pem_private_key(pem.get_secret_value().encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"the PDS private key is not a readable unencrypted PEM key ({exc})") from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigurationError(f"the PDS private key must be an RSA key for RS512, not {type(key).__name__}")
    return key


def client_assertion(*, api_key: str, token_url: str, kid: str, key: RSAPrivateKey, now: float) -> str:
    """A signed JWT that proves to the token endpoint that this application holds the registered private key."""
    issued = int(now)
    claims = {
        "iss": api_key,
        "sub": api_key,
        "aud": token_url,
        "jti": str(uuid.uuid4()),
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME_SECONDS,
    }
    return jwt.encode(claims, key, algorithm=SIGNING_ALGORITHM, headers={"kid": kid})


@dataclass(frozen=True, slots=True, repr=False)
class AccessToken:
    """A bearer token and when it stops working (seconds on the injected clock)."""

    value: str
    expires_at: float

    def __repr__(self) -> str:
        return f"AccessToken(expires_at={self.expires_at})"


#: A bearer token as RFC 6750 section 2.1 writes it (b64token): what can go in an Authorization header.
BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def parse_token_response(body: object, *, now: float) -> AccessToken:
    """The token from the endpoint's JSON answer (``expires_in`` comes as a string on NHS England's platform)."""
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise TransientError("the token endpoint answered 2xx without an access_token")
    if not BEARER_TOKEN.fullmatch(body["access_token"]):
        raise TransientError("the token endpoint answered an access_token that is not a bearer token")
    try:
        lifetime = float(body.get("expires_in", 0))
    except (TypeError, ValueError, OverflowError):
        raise TransientError("the token endpoint answered an expires_in that is not a number") from None
    if not math.isfinite(lifetime):
        raise TransientError("the token endpoint answered an expires_in that is not a number")
    return AccessToken(body["access_token"], now + lifetime)


class TokenSource:
    """Access tokens for one application, fetched when needed and cached until ``margin`` seconds before expiry."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        token_url: str,
        api_key: SecretStr,
        kid: str,
        private_key: RSAPrivateKey,
        margin_seconds: float = 30.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._token_url = token_url
        self._api_key = api_key
        self._kid = kid
        self._key = private_key
        self._margin = margin_seconds
        self._now = now
        self._current: AccessToken | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0  # how many token calls were made: a figure for operators and tests

    async def token(self) -> str:
        """A bearer token valid for at least ``margin`` more seconds."""
        async with self._lock:
            current = self._current
            if current is None or self._now() >= current.expires_at - self._margin:
                current = self._current = await self._fetch()
            return current.value

    def invalidate(self) -> None:
        """Forget the cached token (the API refused it before its time: revoked, or the clocks disagree)."""
        self._current = None

    async def _fetch(self) -> AccessToken:
        now = self._now()
        assertion = client_assertion(
            api_key=self._api_key.get_secret_value(),
            token_url=self._token_url,
            kid=self._kid,
            key=self._key,
            now=now,
        )
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        self.fetches += 1
        response = await send(self._client, self._client.build_request("POST", self._token_url, data=form))
        error = classify(response)
        if isinstance(error, TransientError):
            raise error
        if error is not None:
            raise ConfigurationError(
                f"the token endpoint refused the client assertion ({response.status_code} {_oauth_error(response)}):"
                " check the API key, the kid and that the registered public key matches the private key"
            )
        try:
            body = response.json()
        except ValueError:
            raise TransientError("the token endpoint answered 2xx with a body that is not JSON") from None
        return parse_token_response(body, now=now)


def _oauth_error(response: httpx.Response) -> str:
    """``error: error_description`` from an OAuth error answer (RFC 6749 section 5.2), or nothing useful."""
    try:
        body = response.json()
    except ValueError:
        return "no OAuth error body"
    if not isinstance(body, dict):
        return "no OAuth error body"
    error, description = str(body.get("error", "unknown")), str(body.get("error_description", ""))
    return f"{error}: {description}"[:300] if description else error[:300]
