"""What every domain API route shares: the records service, JSON answers with ETag/Location, and idempotent writes.

Writes may carry an ``Idempotency-Key`` header (any string of 1 to 255 visible characters, unique per client and
request, e.g. a UUID). The first answer to a key is remembered for ``KWG_IDEMPOTENCY_RETENTION_HOURS``; the same
request with the same key gets that answer again with ``Idempotent-Replayed: true``, and a different request with a
used key gets 422. A create's new record id is derived from the client and the key, so even a retry after a lost
answer cannot create a second record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import Header, Request
from starlette.responses import Response

from gateway.api.deps import repository
from gateway.api.fhir import parse_if_match as fhir_if_match
from gateway.auth import Caller
from gateway.domain.service import KeyworkingRecords, Saved, record_id_of
from gateway.errors import InvalidRequest, UnprocessableRecord
from gateway.errors import Issue as GatewayIssue
from gateway.store.idempotency import IdempotencyStore, RememberedAnswer
from mappings.keyworking.mapping import MAIN_RESOURCE
from mappings.keyworking.records import Record

JSON = "application/json"
PREFIX = "/api/v1"

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Makes the write safe to retry: the same key and request get the first answer again.",
    ),
]
IfMatch = Annotated[str | None, Header(alias="If-Match", description='The version read, as W/"n"')]


def audit(
    request: Request,
    caller: Caller,
    interaction: str,
    records: list[Any] | tuple[Any, ...],
    query: str | None = None,
    person_id: str | None = None,
) -> None:
    """An AuditEvent for a domain API interaction: the records' main resources and the people they are about."""

    refs: list[str] = []
    patients: list[str] = [person_id] if person_id is not None else []
    for record in records:
        rid = getattr(record, "id", None)
        if rid is not None and type(record) in MAIN_RESOURCE:
            refs.append(f"{MAIN_RESOURCE[type(record)]}/{rid}")
        person = rid if type(record).__name__ == "Person" else getattr(record, "person_id", None)
        if person is not None:
            patients.append(person)
    request.app.state.audit.interaction(
        caller, interaction, references=tuple(refs[:50]), patients=tuple(dict.fromkeys(patients)), query=query
    )


def records(request: Request) -> KeyworkingRecords:
    """The keyworking records service over the app's repository, with the register rules the app was built with."""
    return KeyworkingRecords(repository(request), after_write=getattr(request.app.state, "register_rules", None))


def body_of(record: Record) -> bytes:
    return orjson.dumps(record.model_dump(mode="json", exclude_none=True))


def answer(
    saved_or_record: Saved[Any] | Record, *, status: int = 200, location: str | None = None, version: int | None = None
) -> Response:
    """A record as JSON, with its main resource's version as ETag and, for a create, its Location."""
    if isinstance(saved_or_record, Saved):
        record, version = saved_or_record.record, saved_or_record.version
    else:
        record = saved_or_record
    headers = {}
    if version is not None:
        headers["ETag"] = f'W/"{version}"'
    if location is not None:
        headers["Location"] = location
    return Response(body_of(record), status_code=status, media_type=JSON, headers=headers)


def saved_answer(saved: Saved[Any], collection: str) -> Response:
    """201 with Location for a record this write created, 200 otherwise."""
    rid = record_id_of(saved.record)
    if saved.created:
        return answer(saved, status=201, location=f"{PREFIX}/{collection}/{rid}")
    return answer(saved)


def list_answer(items: list[Any]) -> Response:
    return Response(
        orjson.dumps({"items": [i.model_dump(mode="json", exclude_none=True) for i in items], "total": len(items)}),
        media_type=JSON,
    )


def parse_if_match(value: str | None) -> int | None:
    """The version in an ``If-Match: W/"n"`` header (the same rule as the FHIR API's)."""
    return fhir_if_match(value)


async def idempotent(
    request: Request, caller: Caller, key: str | None, write: Callable[[str | None], Awaitable[Response]]
) -> Response:
    """Run ``write`` (given the seed for a new record's id) once per Idempotency-Key; replay its answer after."""
    if key is None:
        return await write(None)
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise InvalidRequest(
            "Idempotency-Key must be 1 to 255 printable characters",
            issues=[GatewayIssue("invalid", "bad Idempotency-Key", ("Idempotency-Key",))],
        )
    settings = request.app.state.settings
    store = IdempotencyStore.beside(repository(request), retention_hours=settings.idempotency_retention_hours)
    fingerprint = hashlib.sha256(
        b"\n".join([request.method.encode(), request.url.path.encode(), await request.body()])
    ).hexdigest()
    remembered = await store.recall(caller.client_id, key)
    if remembered is not None:
        if remembered.fingerprint != fingerprint:
            raise UnprocessableRecord(
                "this Idempotency-Key was already used for a different request; use a new key for a new request",
                issues=[
                    GatewayIssue("invalid", "Idempotency-Key reused with a different request", ("Idempotency-Key",))
                ],
            )
        headers = {"Idempotent-Replayed": "true"}
        if remembered.location:
            headers["Location"] = remembered.location
        return Response(remembered.body, status_code=remembered.status, media_type=JSON, headers=headers)
    response = await write(f"{caller.client_id}:{key}")
    if 200 <= response.status_code < 300:
        body = response.body if isinstance(response.body, bytes) else bytes(response.body)
        await store.remember(
            caller.client_id,
            key,
            RememberedAnswer(fingerprint, response.status_code, body, response.headers.get("location")),
        )
    return response


async def act(
    request: Request,
    caller: Caller,
    key: str | None,
    kind: type[Any],
    record_id: str,
    step: Callable[[Any], Any],
) -> Response:
    """Apply a lifecycle step to a stored record (409 when its state forbids it) and answer with the new record."""

    async def write(_seed: str | None) -> Response:
        saved = await records(request).change(kind, record_id, step)
        audit(request, caller, "update", [saved.record])
        return answer(saved)

    return await idempotent(request, caller, key, write)
