"""Clients and replay protection on both databases (SQLite and PostgreSQL, migrated by 0007)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from gateway.security.assertion import client_assertion, jwk_of
from gateway.security.clients import ApiClient, add_client, disable_client, get_client
from gateway.security.tokens import TokenError, verify_assertion
from gateway.settings import Settings
from gateway.store.db import create_engine
from tests.security.conftest import TOKEN_URL, TRUST_KEY


async def test_an_assertion_is_used_once_on_each_database(db_url: str, tmp_path: Path) -> None:
    engine = create_engine(Settings(home=tmp_path, database_url=db_url, auth="off"))  # type: ignore[arg-type]
    client_id = f"c-{uuid.uuid4().hex[:12]}"
    jwks = {"keys": [jwk_of(TRUST_KEY.public_key(), "k1")]}
    try:
        await add_client(engine, ApiClient(client_id, "Client", "RX4", "nhs-provider", "system/*.rs", jwks, False))
        stored = await get_client(engine, client_id)
        assert stored is not None and stored.jwks == jwks and not stored.disabled
        once = client_assertion(TRUST_KEY, client_id=client_id, token_url=TOKEN_URL, kid="k1")
        assert (await verify_assertion(engine, once, TOKEN_URL)).client_id == client_id
        with pytest.raises(TokenError, match="already used"):
            await verify_assertion(engine, once, TOKEN_URL)
        # Two assertions racing with one jti: exactly one wins.
        twin = client_assertion(TRUST_KEY, client_id=client_id, token_url=TOKEN_URL, kid="k1", extra={"jti": "t"})
        results = await asyncio.gather(
            *(verify_assertion(engine, twin, TOKEN_URL) for _ in range(4)), return_exceptions=True
        )
        assert sum(not isinstance(r, BaseException) for r in results) == 1
        assert all(isinstance(r, TokenError) for r in results if isinstance(r, BaseException))
        assert await disable_client(engine, client_id)
        fresh = client_assertion(TRUST_KEY, client_id=client_id, token_url=TOKEN_URL, kid="k1")
        with pytest.raises(TokenError, match="disabled"):
            await verify_assertion(engine, fresh, TOKEN_URL)
    finally:
        await engine.dispose()


async def test_a_jti_is_unique_per_client_not_across_clients(db_url: str, tmp_path: Path) -> None:
    """RFC 7523: the jti is unique per issuer, so one client's identifier never blocks another client's use of it;
    each client still uses it only once."""
    engine = create_engine(Settings(home=tmp_path, database_url=db_url, auth="off"))  # type: ignore[arg-type]
    jwks = {"keys": [jwk_of(TRUST_KEY.public_key(), "k1")]}
    shared_jti = f"jti-{uuid.uuid4().hex}"
    try:
        for n in range(2):
            client_id = f"c{n}-{uuid.uuid4().hex[:12]}"
            await add_client(engine, ApiClient(client_id, "Client", "RX4", "nhs-provider", "system/*.rs", jwks, False))
            assertion = client_assertion(
                TRUST_KEY, client_id=client_id, token_url=TOKEN_URL, kid="k1", extra={"jti": shared_jti}
            )
            assert (await verify_assertion(engine, assertion, TOKEN_URL)).client_id == client_id
            with pytest.raises(TokenError, match="already used"):
                await verify_assertion(engine, assertion, TOKEN_URL)
    finally:
        await engine.dispose()
