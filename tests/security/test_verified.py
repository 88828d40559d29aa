"""Verified tokens are remembered until they expire, and the memory is bounded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.security.tokens import AccessClaims
from gateway.security.verified import VerifiedTokens
from tests.security.conftest import Secured, trust_assertion


def claims(expires_at: int) -> AccessClaims:
    return AccessClaims("c", "RX4", "nhs-provider", "system/*.rs", "DIRECT_CARE", expires_at)


def test_a_token_is_remembered_until_it_expires() -> None:
    verified = VerifiedTokens()
    verified.put("t", claims(1000))
    assert verified.get("t", now=999) == claims(1000)
    assert verified.get("t", now=1000) is None  # expired: forgotten, verified afresh (and refused) next time
    assert verified.get("t", now=10) is None and len(verified) == 0
    verified.put("no-expiry", claims(0))
    assert verified.get("no-expiry", now=0) is None


@given(st.lists(st.integers(min_value=0, max_value=30), max_size=200), st.integers(min_value=1, max_value=8))
def test_the_memory_keeps_at_most_capacity_most_recent_tokens(uses: list[int], capacity: int) -> None:
    verified = VerifiedTokens(capacity)
    recent: list[str] = []
    for n in uses:
        token = f"t{n}"
        if verified.get(token, now=0) is None:
            verified.put(token, claims(100))
        recent = [t for t in recent if t != token] + [token]
        assert len(verified) <= capacity
    for token in recent[-capacity:]:
        assert verified.get(token, now=0) is not None


async def test_a_token_is_verified_once_per_worker(secured: Secured) -> None:
    token = await secured.token(trust_assertion(), scope="system/Patient.rs")
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(3):
        assert (await secured.http.get("/fhir/Patient", headers=headers)).status_code == 200
    assert len(secured.app.state.verified_tokens) == 1
    forged = token[:-6] + "AAAAAA"
    for _ in range(3):
        assert (
            await secured.http.get("/fhir/Patient", headers={"Authorization": f"Bearer {forged}"})
        ).status_code == 401
    assert len(secured.app.state.verified_tokens) == 1  # refused tokens are never remembered
