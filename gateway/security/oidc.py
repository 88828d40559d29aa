"""Access tokens from an external OpenID Connect issuer (for example a regional identity service), accepted by
configuration: ``KWG_OIDC_ISSUER``, ``KWG_OIDC_JWKS_URL`` and ``KWG_OIDC_AUDIENCE`` together.

The issuer's public keys come from its JWKS URL through PyJWT's :class:`jwt.PyJWKClient`, which keeps the key set
for five minutes and fetches it again when a token names a key it has not seen (a key rotation), at most once every
30 seconds (so tokens with made-up key ids cannot make the gateway flood the issuer). A token must be
signed with an asymmetric algorithm, name the configured issuer and audience, and carry the claims the gateway needs
to know who is calling: the client (``client_id``, else ``azp``, else ``sub``), the organisation (``org``) and its
type (``org_type``), the SMART scopes (``scope`` as a space-separated string or ``scp`` as a list) and optionally
the purpose of use (``purpose``, default DIRECT_CARE). A token without an organisation is refused: the gateway's
access rules are decided per organisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from gateway.security.clients import ORGANISATION_TYPES
from gateway.security.tokens import PURPOSES, AccessClaims, TokenError
from gateway.settings import Settings

EXTERNAL_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "PS384")


@dataclass(frozen=True, slots=True)
class ExternalIssuer:
    """One trusted OpenID Connect issuer and the audience its tokens must name for this gateway."""

    issuer: str
    jwks_url: str
    audience: str


class ExternalTokens:
    """Verifies tokens of one external issuer; holds the issuer's key set between requests."""

    def __init__(self, issuer: ExternalIssuer, timeout: float = 5.0, refetch_after: float = 30.0) -> None:
        self.issuer = issuer
        self._keys = jwt.PyJWKClient(
            issuer.jwks_url, cache_jwk_set=True, lifespan=300, timeout=timeout, cooldown_duration=refetch_after
        )

    def accepts(self, token: str) -> bool:
        """Whether the token claims to come from this issuer (nothing is trusted until :meth:`verify`)."""
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return False
        return unverified.get("iss") == self.issuer.issuer

    def verify(self, token: str) -> AccessClaims:
        """The caller a valid token of this issuer stands for; TokenError (invalid_token) otherwise."""
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=list(EXTERNAL_ALGORITHMS),
                audience=self.issuer.audience,
                issuer=self.issuer.issuer,
                options={"require": ["iss", "aud", "exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("invalid_token", "the access token has expired", 401) from None
        except jwt.PyJWKClientConnectionError:
            raise TokenError("invalid_token", "the issuer's keys could not be fetched", 401) from None
        except jwt.PyJWTError:
            raise TokenError("invalid_token", "the access token is not valid", 401) from None
        return external_claims(claims)


def external_claims(claims: dict[str, Any]) -> AccessClaims:
    """The gateway's view of a verified external token's claims (pure; refuses what it cannot act on)."""
    client_id = claims.get("client_id") or claims.get("azp") or claims.get("sub")
    organisation = claims.get("org")
    organisation_type = claims.get("org_type")
    if not isinstance(organisation, str) or not organisation:
        raise TokenError("invalid_token", "the access token names no organisation (org)", 401)
    if organisation_type not in ORGANISATION_TYPES:
        raise TokenError("invalid_token", "the access token's org_type is not one the gateway knows", 401)
    scope = claims.get("scope")
    if scope is None and isinstance(claims.get("scp"), list):
        scope = " ".join(str(s) for s in claims["scp"])
    if not isinstance(scope, str) or not scope.strip():
        raise TokenError("invalid_token", "the access token carries no scope", 401)
    purpose = str(claims.get("purpose") or "DIRECT_CARE").upper()
    if purpose not in PURPOSES:
        raise TokenError("invalid_token", "the access token's purpose is not one the gateway knows", 401)
    return AccessClaims(
        str(client_id), organisation, str(organisation_type), scope, purpose, int(claims.get("exp") or 0)
    )


def configured_issuer(settings: Settings) -> ExternalIssuer | None:
    """The external issuer the settings name (``oidc_issuer``, ``oidc_jwks_url``, ``oidc_audience``), if any.

    All three or none: a partial configuration is refused rather than half-trusted. In production the key set must
    come over HTTPS (a key set fetched in the clear would let anyone on the path mint tokens)."""
    values = [getattr(settings, name, None) for name in ("oidc_issuer", "oidc_jwks_url", "oidc_audience")]
    if not any(values):
        return None
    if not all(values):
        raise ValueError("KWG_OIDC_ISSUER, KWG_OIDC_JWKS_URL and KWG_OIDC_AUDIENCE must be set together")
    issuer, jwks_url, audience = (str(v) for v in values)
    if str(getattr(settings, "env", "")) == "production" and not jwks_url.startswith("https://"):
        raise ValueError("KWG_OIDC_JWKS_URL must be an https:// URL in production")
    return ExternalIssuer(issuer, jwks_url, audience)


def external_tokens_for(settings: Settings) -> ExternalTokens | None:
    """The verifier for the configured external issuer, or None: made once when the app is created, so a partial
    configuration stops start-up and the issuer's key set is cached for the app's life."""
    issuer = configured_issuer(settings)
    return None if issuer is None else ExternalTokens(issuer)
