"""What every domain API route shares: the records service, the audit, and idempotent writes (answers, reduced to
the caller's sharing profile, are made by :mod:`gateway.api.v1.guard`).

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
from gateway.domain.service import KeyworkingRecords
from gateway.errors import InvalidRequest, UnprocessableRecord
from gateway.errors import Issue as GatewayIssue
from gateway.origins import client_origin
from gateway.store.idempotency import IdempotencyStore, RememberedAnswer
from mappings.keyworking.mapping import MAIN_RESOURCE

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


def records(request: Request, caller: Caller) -> KeyworkingRecords:
    """The keyworking records service over the app's repository, with the register rules the app was built with;
    its writes are attributed to ``caller`` (a Provenance per record write)."""
    return KeyworkingRecords(
        repository(request),
        after_write=getattr(request.app.state, "register_rules", None),
        origin=client_origin(caller),
    )


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
    """Apply a lifecycle step to a stored record (409 when its state forbids it) and answer with the new record,
    as the caller may see it; the caller needs a legitimate relationship with the person it is about."""
    from gateway.api.v1.guard import authorise_write, shown_answer  # the guard builds on this module

    await authorise_write(request, caller, kind, record_id)

    async def write(_seed: str | None) -> Response:
        saved = await records(request, caller).change(kind, record_id, step)
        audit(request, caller, "update", [saved.record])
        return shown_answer(caller, saved)

    return await idempotent(request, caller, key, write)
