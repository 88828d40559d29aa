"""Registered API clients: the organisation each acts for, the scopes it may be granted, its public keys (JWKS)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from jwt import PyJWK
from jwt.exceptions import PyJWKError
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.security.scopes import parse_scopes
from gateway.security.tables import api_client
from gateway.store.db import begin_write
from gateway.store.timeutil import now_us

CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
ORGANISATION_TYPES = frozenset({"nhs-provider", "local-authority", "school", "childrens-home", "youth-justice", "icb"})


class ClientError(ValueError):
    """A registration the gateway refuses (unknown organisation type, a JWKS with private or symmetric keys, an id
    already taken); the message says which."""


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
    """Only public RSA or EC keys, each with a distinct ``kid`` (the assertion's ``kid`` picks one). A private key
    in a JWKS would mean the client's secret has left it; a symmetric key would let the gateway sign as the
    client."""
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
    kids = [key["kid"] for key in keys]
    if len(set(kids)) != len(kids):
        raise ClientError("every key in the JWKS needs its own kid")


async def add_client(engine: AsyncEngine, client: ApiClient) -> None:
    if not CLIENT_ID.fullmatch(client.client_id):
        raise ClientError("a client id is 1 to 128 letters, digits, dots, dashes or underscores")
    if client.organisation_type not in ORGANISATION_TYPES:
        raise ClientError(f"organisation type must be one of {', '.join(sorted(ORGANISATION_TYPES))}")
    check_jwks(client.jwks)
    if not parse_scopes(client.scopes):
        raise ClientError('the client needs at least one system scope (e.g. "system/*.rs")')
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
    except IntegrityError:
        raise ClientError(f"there is already a client {client.client_id}") from None
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
