"""Bearer tokens already verified in this worker, kept until they expire.

A client sends the same access token with every request for its whole lifetime (five minutes by default), so its
signature and claims need checking once, not on every request: a hit costs a dictionary look-up instead of an RSA
verification and PyJWT's parsing (about 60 µs; more under load). A hit is still refused once the token's ``exp``
has passed. Only tokens that verified are kept (a refused token is checked again every time, so a flood of forged
tokens cannot evict good ones faster than it costs the sender), and the store is bounded.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from gateway.security.tokens import AccessClaims


class VerifiedTokens:
    """A bounded, least-recently-used map of token → claims for tokens that verified and have not expired."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._claims: OrderedDict[str, AccessClaims] = OrderedDict()

    def get(self, token: str, now: float | None = None) -> AccessClaims | None:
        claims = self._claims.get(token)
        if claims is None:
            return None
        if claims.expires_at <= (time.time() if now is None else now):
            del self._claims[token]
            return None
        self._claims.move_to_end(token)
        return claims

    def put(self, token: str, claims: AccessClaims) -> None:
        if claims.expires_at <= 0:
            return  # no expiry known: never kept
        self._claims[token] = claims
        self._claims.move_to_end(token)
        while len(self._claims) > self.capacity:
            self._claims.popitem(last=False)

    def __len__(self) -> int:
        return len(self._claims)
