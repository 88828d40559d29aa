"""Registered API clients: the organisation each acts for, the scopes it may be granted, its public keys (JWKS)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jwt import PyJWK
from jwt.exceptions import PyJWKError
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.security.tables import api_client
from gateway.store.db import begin_write
from gateway.store.timeutil import now_us

ORGANISATION_TYPES = frozenset({"nhs-provider", "local-authority", "school", "childrens-home", "youth-justice", "icb"})


class ClientError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ApiClient:
    client_id: str
    name: str
    organisation: str
    organisation_type: str
    scopes: str
    jwks: dict[str, Any]
    disabled: bool


def check_jwks(jwks: dict[str, Any]) -> None:
    """Only public RSA or EC keys, each with a ``kid``."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ClientError("the JWKS has no keys")
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC") or "kid" not in key:
            raise ClientError("every key must be an RSA or EC key with a kid")
        if any(private in key for private in ("d", "p", "q")):
            raise ClientError("the JWKS must hold public keys only")
        try:
            PyJWK(key)
        except PyJWKError as exc:
            raise ClientError(f"key {key.get('kid')}: {exc}") from None


async def add_client(engine: AsyncEngine, client: ApiClient) -> None:
    if client.organisation_type not in ORGANISATION_TYPES:
        raise ClientError(f"organisation type must be one of {', '.join(sorted(ORGANISATION_TYPES))}")
    check_jwks(client.jwks)
    conn = await begin_write(engine)
    try:
        async with conn.begin():
            await conn.execute(
                insert(api_client).values(
                    client_id=client.client_id,
                    name=client.name,
                    organisation=client.organisation,
                    organisation_type=client.organisation_type,
                    scopes=client.scopes,
                    jwks=json.dumps(client.jwks),
                    disabled=False,
                    created_at=now_us(),
                )
            )
    finally:
        await conn.close()


def _client(row: Any) -> ApiClient:
    return ApiClient(
        row.client_id, row.name, row.organisation, row.organisation_type, row.scopes, json.loads(row.jwks), row.disabled
    )


async def get_client(engine: AsyncEngine, client_id: str) -> ApiClient | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(api_client).where(api_client.c.client_id == client_id))).first()
    return None if row is None else _client(row)


async def list_clients(engine: AsyncEngine) -> list[ApiClient]:
    async with engine.connect() as conn:
        return [_client(r) for r in (await conn.execute(select(api_client).order_by(api_client.c.client_id))).all()]


async def disable_client(engine: AsyncEngine, client_id: str) -> bool:
    conn = await begin_write(engine)
    try:
        async with conn.begin():
            result = await conn.execute(
                update(api_client).where(api_client.c.client_id == client_id).values(disabled=True)
            )
    finally:
        await conn.close()
    return bool(result.rowcount)
