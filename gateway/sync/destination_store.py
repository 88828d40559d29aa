"""Destinations made through the API: stored in ``sync_destination``, read by every process without a restart.

The file's destinations (``KWG_DESTINATIONS_FILE``) stay read-only; these sit beside them under other names.
A body is the :class:`~gateway.sync.destinations.Destination` model: secrets are never accepted, only the names of
the environment variables that hold them (as in the file). Removing a destination keeps a tombstone row and turns
its pending deliveries into dead letters ("destination removed"), in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from connectors.registry import PUSH_CONNECTORS
from gateway.errors import Conflict, Issue, NotFound, UnprocessableRecord
from gateway.store.db import begin_write
from gateway.store.timeutil import now_us
from gateway.sync.destinations import Destination, DestinationConfigError
from gateway.sync.managed_tables import sync_destination
from gateway.sync.tables import delivery, delivery_attempt

#: Names of destinations made for FHIR Subscriptions (gateway.sync.subscriptions); not available to the API.
SUBSCRIPTION_PREFIX = "subscription-"
REMOVED = "destination removed"
RESTHOOK = "rest-hook"  # the connector of FHIR Subscriptions, not offered here
_SECRET_WORDS = ("secret", "token", "password", "api_key", "apikey", "private_key", "credential")


def _problem(field: str, message: str) -> UnprocessableRecord:
    return UnprocessableRecord(f"{field}: {message}", issues=[Issue("invalid", message, (field,))])


def parse_body(body: Any, *, name: str | None = None) -> Destination:
    """A destination from a request body; UnprocessableRecord (422) naming each bad field.

    ``name``: the name in the URL (PUT), which the body's name must match (or leave out).
    """
    if not isinstance(body, dict):
        raise _problem("body", "a destination is a JSON object")
    if name is not None:
        if body.get("name", name) != name:
            raise _problem("name", f"the body names {body.get('name')!r} but the URL {name!r}")
        body = {**body, "name": name}
    try:
        destination = Destination.model_validate(body)
    except ValidationError as exc:
        issues = [
            Issue("invalid", str(e["msg"]), (".".join(str(p) for p in e["loc"]) or "body",))
            for e in exc.errors(include_url=False)
        ]
        raise UnprocessableRecord("; ".join(f"{i.expression[0]}: {i.diagnostics}" for i in issues), issues) from None
    if destination.name.startswith(SUBSCRIPTION_PREFIX):
        raise _problem("name", f"names starting {SUBSCRIPTION_PREFIX!r} are kept for FHIR Subscriptions")
    if destination.connector == RESTHOOK or destination.connector not in PUSH_CONNECTORS:
        known = ", ".join(sorted(set(PUSH_CONNECTORS) - {RESTHOOK}))
        raise _problem("connector", f"unknown connector (known: {known})")
    secrets = _secret_keys(destination.options)
    if secrets:
        raise _problem(f"options.{secrets[0]}", "secrets are not accepted: name the environment variable (…_env)")
    try:
        destination.connector_settings()  # the secret variables it names are set (here, as at start-up)
    except DestinationConfigError as exc:
        field = "bearer_token_env" if "bearer_token_env" in exc.problems[0] else "api_key_env"
        raise _problem(field, exc.problems[0].split(": ", 2)[-1]) from None
    return destination


def _secret_keys(options: Mapping[str, Any], prefix: str = "") -> list[str]:
    found = []
    for key, value in options.items():
        lowered = key.lower()
        if any(word in lowered for word in _SECRET_WORDS) and not lowered.endswith("_env"):
            found.append(prefix + key)
        if isinstance(value, dict):
            found.extend(_secret_keys(value, f"{prefix}{key}."))
    return found


def _config(destination: Destination) -> str:
    return orjson.dumps(destination.model_dump(mode="json")).decode()


@dataclass(frozen=True, slots=True)
class StoredDestinations:
    """The API's destinations now: the live ones, and the names removed (tombstones)."""

    live: tuple[Destination, ...]
    removed: frozenset[str]


async def version(conn: AsyncConnection) -> tuple[object, ...]:
    """Changes whenever a destination is added, replaced or removed (cheap: one aggregate)."""
    row = (await conn.execute(select(func.max(sync_destination.c.updated_at), func.count()))).one()
    return tuple(row)


async def read_all(conn: AsyncConnection) -> StoredDestinations:
    rows = (await conn.execute(select(sync_destination).order_by(sync_destination.c.name))).all()
    live = tuple(Destination.model_validate_json(r.config) for r in rows if not r.removed)
    return StoredDestinations(live, frozenset(str(r.name) for r in rows if r.removed))


async def list_destinations(engine: AsyncEngine) -> StoredDestinations:
    async with engine.connect() as conn:
        return await read_all(conn)


async def save(engine: AsyncEngine, destination: Destination, file_names: frozenset[str], *, replace: bool) -> bool:
    """Add (``replace=False``: 409 if the name is taken) or add-or-replace a destination; True when it is new."""
    if destination.name in file_names:
        raise Conflict(f"destination {destination.name} comes from KWG_DESTINATIONS_FILE, which is read-only")
    now = now_us()
    conn = await begin_write(engine)
    try:
        async with conn.begin():
            row = (
                await conn.execute(
                    select(sync_destination.c.removed).where(sync_destination.c.name == destination.name)
                )
            ).first()
            if row is not None and not row.removed and not replace:
                raise Conflict(f"there is already a destination {destination.name}")
            values = {"config": _config(destination), "removed": False, "updated_at": now}
            if row is None:
                await conn.execute(insert(sync_destination).values(name=destination.name, **values))
            else:
                await conn.execute(
                    update(sync_destination).where(sync_destination.c.name == destination.name).values(**values)
                )
            return row is None or bool(row.removed)
    finally:
        await conn.close()


async def remove(engine: AsyncEngine, name: str, file_names: frozenset[str]) -> int:
    """Remove a destination: a tombstone, and its pending deliveries become dead letters. Returns how many."""
    if name in file_names:
        raise Conflict(f"destination {name} comes from KWG_DESTINATIONS_FILE, which is read-only")
    conn = await begin_write(engine)
    try:
        async with conn.begin():
            gone = await conn.execute(
                update(sync_destination)
                .where(sync_destination.c.name == name, sync_destination.c.removed.is_(False))
                .values(removed=True, updated_at=now_us())
            )
            if not gone.rowcount:
                raise NotFound(f"there is no destination {name} made through the API")
            return await dead_letter_pending(conn, name, REMOVED)
    finally:
        await conn.close()


async def dead_letter_pending(conn: AsyncConnection, destination: str, reason: str, lane: int | None = None) -> int:
    """Every pending delivery of the destination (or one lane of it) becomes a dead letter with ``reason``."""
    query = select(delivery.c.id).where(delivery.c.destination == destination, delivery.c.status == "pending")
    if lane is not None:
        query = query.where(delivery.c.lane == lane)
    ids = [int(r[0]) for r in (await conn.execute(query)).all()]
    if not ids:
        return 0
    now = now_us()
    await conn.execute(
        update(delivery)
        .where(delivery.c.id.in_(ids), delivery.c.status == "pending")
        .values(status="dead", finished_at=now, last_error=reason)
    )
    await conn.execute(
        insert(delivery_attempt),
        [
            {"delivery_id": i, "at": now, "outcome": "dead", "status": None, "error": reason, "duration_ms": 0}
            for i in ids
        ],
    )
    return len(ids)


async def dead_letter_lane(engine: AsyncEngine, destination: str, lane: int, reason: str) -> int:
    conn = await begin_write(engine)
    try:
        async with conn.begin():
            return await dead_letter_pending(conn, destination, reason, lane)
    finally:
        await conn.close()
