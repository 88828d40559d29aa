"""The development client: on a development machine with authentication on, ``kwg serve`` registers ``kwg-demo``
(acting for a demo ICB, all scopes) with a key under ``KWG_HOME``, so the README's first command leaves a gateway
a new user can get a token for (``kwg token --client-id kwg-demo --key ~/.kwg/demo-client.pem``). Never in
production."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.security.assertion import client_assertion, load_private_key, new_private_key, private_pem
from gateway.security.clients import ApiClient, add_client, get_client
from gateway.security.tables import api_client
from gateway.settings import Environment, Settings
from gateway.store.db import begin_write, create_engine

CLIENT_ID = "kwg-demo"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def key_path(settings: Settings) -> Path:
    return settings.home / "demo-client.pem"


def ensure_development_client(settings: Settings) -> Path:
    """Register kwg-demo (once) and return the path of its private key."""
    if settings.env is not Environment.DEVELOPMENT:
        raise RuntimeError("the development client is for development only")
    path = key_path(settings)

    async def run() -> None:
        engine = create_engine(settings)
        try:
            if await get_client(engine, CLIENT_ID) is not None and path.exists():
                return
            key = new_private_key()
            settings.home.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(private_pem(key))
            jwk = {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": f"{CLIENT_ID}-1", "alg": "RS384"}
            await _replace(
                engine,
                ApiClient(CLIENT_ID, "Development client", "QX9", "icb", "system/*.cruds", {"keys": [jwk]}, False),
            )
        finally:
            await engine.dispose()

    asyncio.run(run())
    return path


async def _replace(engine: AsyncEngine, client: ApiClient) -> None:
    """Register the client afresh (a new key replaces a lost one)."""
    conn = await begin_write(engine)
    try:
        async with conn.begin():
            await conn.execute(delete(api_client).where(api_client.c.client_id == client.client_id))
    finally:
        await conn.close()
    await add_client(engine, client)


class ClientToken(httpx.Auth):
    """An httpx auth that gets a token with the client's key and gets a new one when the gateway answers 401."""

    requires_response_body = True  # httpx reads the token answers for us (sync or async clients alike)

    def __init__(self, base_url: str, client_id: str, key: Path) -> None:
        self.token_url = base_url.rstrip("/") + "/oauth2/token"
        self.client_id = client_id
        self.key = load_private_key(key.read_bytes())
        self.token: str | None = None

    def _fresh(self) -> httpx.Request:
        assertion = client_assertion(
            self.key, client_id=self.client_id, token_url=self.token_url, kid=f"{self.client_id}-1"
        )
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        return httpx.Request("POST", self.token_url, data=form)

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        if self.token is None:
            response = yield self._fresh()
            self.token = response.json().get("access_token")
        request.headers["Authorization"] = f"Bearer {self.token}"
        response = yield request
        if response.status_code == 401:
            fresh = yield self._fresh()
            self.token = fresh.json().get("access_token")
            request.headers["Authorization"] = f"Bearer {self.token}"
            yield request
