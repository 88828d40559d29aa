"""FHIR R4 rest-hook Subscriptions, delivered by the sync engine.

Each active Subscription is a destination of the ``rest-hook`` connector (connectors.resthook) named
``subscription-<id>``, whose filter is its ``criteria``: at relay time a changed resource is notified when the
criteria search, restricted to ``_id=<changed ids>``, finds it now, and when the Subscription's creator may see it
(:func:`gateway.api.access.minimised` and the legitimate-relationship policy). Retries, backoff, lanes and dead
letters are the engine's. After a dead letter, or ``subscription_error_after_attempts`` failed attempts, the
Subscription's status becomes ``error`` (with ``error`` text); a later success sets it ``active`` again. ``off``
stops deliveries (pending ones become dead letters, "subscription off").

The creating client and its organisation are kept in ``subscription_owner`` (first creator; a later update by
another client does not change it).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from sqlalchemy import and_, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.access.policy import AccessPolicy
from gateway.api.access import RECIPIENTS, minimised, person_of
from gateway.auth import Caller
from gateway.errors import Forbidden, GatewayError, InvalidSearch, Issue, PreconditionFailed, UnprocessableRecord
from gateway.settings import Settings
from gateway.store.db import begin_write
from gateway.store.models import resource
from gateway.store.records import StoredResource
from gateway.store.repository import FhirRepository
from gateway.store.search import PAGING_PARAMS
from gateway.store.timeutil import now_us
from gateway.sync import sharing
from gateway.sync.deliver import DrainReport
from gateway.sync.destination_store import SUBSCRIPTION_PREFIX
from gateway.sync.destinations import Destination
from gateway.sync.managed_tables import subscription_owner
from gateway.sync.sharing import Recipient
from gateway.sync.tables import delivery
from mappings.fhir import is_supported_type

PAYLOADS = ("application/fhir+json", "application/json")
LIVE = ("active", "error")  # statuses that receive notifications
_HEADER = re.compile(r"^[A-Za-z0-9\-]{1,64}:\s?[^\r\n]*$")
_PLAIN_ID = re.compile(r"^[a-z0-9\-]{1,49}$")
_NOT_FILTERS = PAGING_PARAMS | {"_include", "_revinclude", "_id"}


@dataclass(frozen=True, slots=True)
class Criteria:
    """A Subscription's criteria: a resource type and its search parameters."""

    res_type: str
    params: tuple[tuple[str, str], ...]


def _invalid(field: str, message: str) -> UnprocessableRecord:
    return UnprocessableRecord(f"{field}: {message}", issues=[Issue("invalid", message, (field,))])


def parse_criteria(text: Any) -> Criteria:
    """``Type?name=value&...`` as a Criteria; UnprocessableRecord naming ``Subscription.criteria`` when it is not."""
    if not isinstance(text, str) or not text.strip():
        raise _invalid("Subscription.criteria", "criteria is required: Type?parameter=value")
    res_type, _, query = text.strip().partition("?")
    if not is_supported_type(res_type) or res_type == "Subscription":
        raise _invalid("Subscription.criteria", f"resource type {res_type!r} cannot be subscribed to")
    params = tuple(parse_qsl(query, keep_blank_values=True))
    for name, _value in params:
        if name.split(":")[0].split(".")[0] in _NOT_FILTERS:
            raise _invalid("Subscription.criteria", f"{name} is not a filter and cannot be used in criteria")
    return Criteria(res_type, params)


def recipient_of(owner: Caller) -> Recipient | None:
    """The sharing profile a Subscription owner's notifications follow (a development caller: an NHS provider)."""
    return Recipient.NHS_PROVIDER if owner.development else RECIPIENTS.get(owner.organisation_type)


def destination_name(subscription_id: str) -> str:
    """``subscription-<id>`` (a hash of the id when the id is not lower case letters, digits and hyphens)."""
    if _PLAIN_ID.match(subscription_id):
        return SUBSCRIPTION_PREFIX + subscription_id
    return SUBSCRIPTION_PREFIX + "h" + hashlib.sha256(subscription_id.encode()).hexdigest()[:32]


def _channel(body: dict[str, Any]) -> dict[str, Any]:
    channel = body.get("channel")
    if not isinstance(channel, dict):
        raise _invalid("Subscription.channel", "channel is required")
    if channel.get("type") != "rest-hook":
        raise _invalid("Subscription.channel.type", "only rest-hook channels are delivered by this gateway")
    endpoint = channel.get("endpoint")
    parts = urlsplit(endpoint) if isinstance(endpoint, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise _invalid("Subscription.channel.endpoint", "an http(s) URL is required")
    payload = channel.get("payload")
    if payload is not None and payload not in PAYLOADS:
        raise _invalid("Subscription.channel.payload", f"absent (a ping) or one of {', '.join(PAYLOADS)}")
    headers = channel.get("header", [])
    if not isinstance(headers, list) or not all(isinstance(h, str) and _HEADER.match(h) for h in headers):
        raise _invalid("Subscription.channel.header", "each header is 'Name: value'")
    return channel


async def accept(repo: FhirRepository, caller: Caller, body: Any) -> Any:
    """Check a Subscription being written (criteria, channel, the caller's sharing profile); ``requested`` becomes
    ``active``. Other bodies pass through unchanged (the store validates them)."""
    if not isinstance(body, dict) or body.get("status") == "off":
        return body
    recipient = recipient_of(caller)
    if recipient is None:
        raise Forbidden(f"a {caller.organisation_type} organisation receives nothing about people: no subscriptions")
    criteria = parse_criteria(body.get("criteria"))
    if not sharing.allows(recipient, criteria.res_type):
        raise _invalid("Subscription.criteria", f"a {recipient.value} recipient does not receive {criteria.res_type}")
    _channel(body)
    try:
        await repo.search(criteria.res_type, [*criteria.params, ("_count", "1")], strict=True)
    except InvalidSearch as exc:
        raise _invalid("Subscription.criteria", exc.message) from None
    if body.get("status") == "requested":
        body = {**body, "status": "active"}
        body.pop("error", None)
    return body


async def record_owner(engine: AsyncEngine, subscription_id: str, caller: Caller) -> None:
    """Remember who created the Subscription (the first writer; later writers do not change it)."""
    conn = await begin_write(engine)
    try:
        async with conn.begin():
            known = await conn.execute(
                select(subscription_owner.c.subscription_id).where(
                    subscription_owner.c.subscription_id == subscription_id
                )
            )
            if known.first() is None:
                await conn.execute(
                    insert(subscription_owner).values(
                        subscription_id=subscription_id,
                        client_id=caller.client_id,
                        organisation=caller.organisation,
                        organisation_type=caller.organisation_type,
                        development=caller.development,
                        created_at=now_us(),
                    )
                )
    finally:
        await conn.close()


async def owner_organisation(engine: AsyncEngine, subscription_id: str) -> str | None:
    """The organisation whose client created the Subscription (None: not recorded, e.g. made before owners were
    kept, or by the development caller)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(subscription_owner.c.organisation, subscription_owner.c.development).where(
                    subscription_owner.c.subscription_id == subscription_id
                )
            )
        ).first()
    return None if row is None or row.development else str(row.organisation)


# -- as destinations ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscriptionTarget:
    """A live Subscription: its id, criteria, owner, and the destination the engine delivers it through."""

    subscription_id: str
    criteria: Criteria
    owner: Caller
    destination: Destination


async def version(conn: AsyncConnection) -> tuple[object, ...]:
    """Changes whenever a Subscription is written or gets an owner."""
    subs = (
        await conn.execute(
            select(func.max(resource.c.last_updated), func.count()).where(resource.c.res_type == "Subscription")
        )
    ).one()
    owners = (await conn.execute(select(func.count()).select_from(subscription_owner))).scalar()
    return (*subs, owners)


def _target(subscription_id: str, body: dict[str, Any], owner: Caller, settings: Settings) -> SubscriptionTarget | None:
    recipient = recipient_of(owner)
    if body.get("status") not in LIVE or recipient is None:
        return None
    try:
        criteria = parse_criteria(body.get("criteria"))
        channel = _channel(body)
        destination = Destination(
            name=destination_name(subscription_id),
            connector="rest-hook",
            endpoint=channel["endpoint"],
            recipient=recipient,
            resource_types=(criteria.res_type,),
            options={
                "subscription": f"Subscription/{subscription_id}",
                "payload": channel.get("payload"),
                "headers": list(channel.get("header", [])),
            },
            lanes=4,
            batch_size=1,  # a rest-hook notification is one request: a retry never repeats another's
            max_attempts=settings.subscription_max_attempts,
            backoff_base_seconds=settings.subscription_backoff_base_seconds,
            backoff_max_seconds=max(600.0, settings.subscription_backoff_base_seconds),
            timeout_seconds=10.0,
        )
    except (GatewayError, ValueError):
        return None  # written around the API's checks (e.g. a Bundle): not delivered
    return SubscriptionTarget(subscription_id, criteria, owner, destination)


async def live_targets(conn: AsyncConnection, settings: Settings) -> tuple[SubscriptionTarget, ...]:
    """The Subscriptions that receive notifications now (active or error, rest-hook, with a known owner)."""
    rows = (
        await conn.execute(
            select(resource.c.res_id, resource.c.content, subscription_owner)
            .select_from(
                resource.join(subscription_owner, and_(subscription_owner.c.subscription_id == resource.c.res_id))
            )
            .where(resource.c.res_type == "Subscription", resource.c.deleted.is_(False))
            .order_by(resource.c.res_id)
        )
    ).all()
    out = []
    for row in rows:
        if row.content is None:
            continue
        owner = Caller(
            client_id=str(row.client_id),
            organisation=str(row.organisation),
            purpose="DIRECT_CARE",
            development=bool(row.development),
            organisation_type=str(row.organisation_type),
        )
        target = _target(str(row.res_id), orjson.loads(row.content), owner, settings)
        if target is not None:
            out.append(target)
    return tuple(out)


# -- matching at relay time -----------------------------------------------------------------------------------------


async def _may_see(repo: FhirRepository, policy: AccessPolicy, owner: Caller, stored: StoredResource) -> bool:
    if minimised(owner, stored) is None:
        return False
    person = person_of(stored)
    return person is None or (await policy.decide(repo, owner, person)).allowed


async def match(
    repo: FhirRepository, policy: AccessPolicy, targets: Sequence[SubscriptionTarget], events: Sequence[Any]
) -> dict[str, set[int]]:
    """Per subscription destination, the outbox events (ids) to notify: changes (not deletions) of resources the
    criteria find now, restricted to what the owner may see."""
    out: dict[str, set[int]] = {}
    for target in targets:
        mine = [e for e in events if e.res_type == target.criteria.res_type and e.method != "delete"]
        out[target.destination.name] = set()
        ids = sorted({str(e.res_id) for e in mine})
        found: set[str] = set()
        for start in range(0, len(ids), 100):
            chunk = ids[start : start + 100]
            params = [*target.criteria.params, ("_id", ",".join(chunk)), ("_count", str(len(chunk)))]
            result = await repo.search(target.criteria.res_type, params, strict=False)
            for stored in result.matches:
                if await _may_see(repo, policy, target.owner, stored):
                    found.add(stored.res_id)
        out[target.destination.name] = {int(e.id) for e in mine if e.res_id in found}
    return out


# -- status after deliveries ----------------------------------------------------------------------------------------


async def set_status(repo: FhirRepository, subscription_id: str, status: str, error: str | None) -> bool:
    """Set a live Subscription's status (active/error) and error text; a Subscription turned off is left alone.
    True when it changed."""
    try:
        stored = await repo.read("Subscription", subscription_id)
    except GatewayError:
        return False
    body = stored.as_dict()
    if body.get("status") not in LIVE or (body.get("status"), body.get("error")) == (status, error):
        return False
    body["status"] = status
    if error is None:
        body.pop("error", None)
    else:
        body["error"] = error[:1000]
    try:
        await repo.update("Subscription", subscription_id, body, if_match=stored.version_id)
    except PreconditionFailed:
        return False  # written meanwhile: the next delivery decides again
    return True


async def _latest_failure(engine: AsyncEngine, destination: str) -> tuple[str, int, str] | None:
    """The subscription's most recent failed delivery: (status, attempts, error), or None."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(delivery.c.status, delivery.c.attempts, delivery.c.last_error)
                .where(
                    delivery.c.destination == destination,
                    delivery.c.status.in_(("pending", "dead")),
                    delivery.c.last_error.is_not(None),
                )
                .order_by(delivery.c.id.desc())
                .limit(1)
            )
        ).first()
    return None if row is None else (str(row.status), int(row.attempts), str(row.last_error))


async def after_drain(
    engine: AsyncEngine, repo: FhirRepository, target: SubscriptionTarget, report: DrainReport, error_after: int
) -> None:
    """Update the Subscription's status from a drain: ``error`` after a dead letter or ``error_after`` failed
    attempts at one notification; ``active`` again after a delivery with nothing failing."""
    name = target.destination.name
    if report.dead or report.retry_in is not None:
        failure = await _latest_failure(engine, name)
        if failure is None:
            return
        status, attempts, error = failure
        if status == "dead":
            await set_status(repo, target.subscription_id, "error", f"notification refused or given up: {error}")
        elif attempts >= error_after:
            await set_status(repo, target.subscription_id, "error", f"notifications failing ({attempts}): {error}")
    elif report.delivered:
        await set_status(repo, target.subscription_id, "active", None)
