"""A gateway with authentication on (in-process over HTTP, SQLite) and two registered clients: an NHS trust's EHR
with an RSA key and a school's system with an EC (P-384) key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI

from gateway.app import create_app
from gateway.security.assertion import client_assertion, jwk_of, new_private_key
from gateway.security.clients import ApiClient, add_client
from gateway.settings import Settings
from gateway.store.migrate import upgrade

BASE = "http://gateway.test"
TOKEN_URL = f"{BASE}/oauth2/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TRUST_KEY = new_private_key()
SCHOOL_KEY = ec.generate_private_key(ec.SECP384R1())


@dataclass
class Secured:
    app: FastAPI
    http: httpx.AsyncClient

    async def ask(self, assertion: str, **form: str) -> httpx.Response:
        """POST /oauth2/token with a client assertion (and any other form fields)."""
        data = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        return await self.http.post("/oauth2/token", data={**data, **form})

    async def token(self, assertion: str, **form: str) -> str:
        answer = await self.ask(assertion, **form)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])


def trust_assertion(key: rsa.RSAPrivateKey = TRUST_KEY, **changes: Any) -> str:
    args: dict[str, Any] = {"client_id": "trust-ehr", "token_url": TOKEN_URL, "kid": "trust-1", **changes}
    return client_assertion(key, **args)


def school_assertion(**changes: Any) -> str:
    args: dict[str, Any] = {
        "client_id": "school-mis",
        "token_url": TOKEN_URL,
        "kid": "school-1",
        "algorithm": "ES384",
        **changes,
    }
    return client_assertion(SCHOOL_KEY, **args)


def secured_settings(tmp_path: Path, **overrides: Any) -> Settings:
    url = f"sqlite+aiosqlite:///{tmp_path}/auth.db"
    return Settings(home=tmp_path, database_url=url, auth="on", **overrides)


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[Secured]:
    settings = secured_settings(tmp_path)
    upgrade(settings, url=settings.resolved_database_url)
    app = create_app(settings)
    trust = {"keys": [jwk_of(TRUST_KEY.public_key(), "trust-1")]}
    school = {"keys": [jwk_of(SCHOOL_KEY.public_key(), "school-1")]}
    scopes = "system/Patient.rs system/Encounter.cruds"
    await add_client(app.state.engine, ApiClient("trust-ehr", "Trust EHR", "RX4", "nhs-provider", scopes, trust, False))
    await add_client(
        app.state.engine,
        ApiClient("school-mis", "School MIS", "100001", "school", "system/Encounter.rs", school, False),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield Secured(app, http)
    await app.state.engine.dispose()
