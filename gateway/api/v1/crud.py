"""The four routes every record kind has, made once: create, read, replace, and list a person's records.

``POST /{collection}`` creates (201, Location; the id is new, or derived from the Idempotency-Key), ``GET
/{collection}/{id}`` reads (ETag), ``PUT /{collection}/{id}`` creates or replaces under a client-chosen id (201 or
200; ``If-Match`` guards against lost updates), and ``GET /{collection}?person_id=`` lists a person's records. The
body of POST and PUT is the record itself, documented in the OpenAPI schema under its own name.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gateway.api.access import check_person
from gateway.api.deps import CallerDep, repository
from gateway.api.v1.common import (
    IdempotencyKey,
    IfMatch,
    audit,
    idempotent,
    parse_if_match,
    records,
)
from gateway.api.v1.guard import authorise_write, list_shown, read_shown, saved_shown
from gateway.api.v1.minimise import may_see_kind
from gateway.domain.service import kind_name, new_record_id
from gateway.errors import InvalidRequest
from mappings.keyworking.records import Person, Record, RecordId


def same_id(body_id: str | None, path_id: str) -> None:
    if body_id is not None and body_id != path_id:
        raise InvalidRequest(f"the id in the body ({body_id!r}) differs from the id in the path ({path_id!r})")


def record_routes(
    router: APIRouter, kind: type[Record], collection: str, *, listed_by_person: bool = True, creatable: bool = True
) -> None:
    """Add the create, read, replace (and list) routes for records of ``kind`` under ``/{collection}``."""
    name = kind_name(kind)

    async def create(
        record: Any, request: Request, caller: CallerDep, idempotency_key: IdempotencyKey = None
    ) -> Response:
        if getattr(record, "id", None) is not None:
            raise InvalidRequest(
                f"a new {name} gets its id from the gateway; use PUT {collection}/{{id}} to choose one"
            )

        if kind is not Person:  # a new person needs no relationship; a record about a held person does
            await authorise_write(request, caller, kind, None, new_person=record.person_id, interaction="create")

        async def write(seed: str | None) -> Response:
            saved = await records(request, caller).create(record, record_id=new_record_id(seed))
            audit(request, caller, "create", [saved.record])
            return saved_shown(caller, saved, collection)

        return await idempotent(request, caller, idempotency_key, write)

    async def read(record_id: RecordId, request: Request, caller: CallerDep) -> Response:
        service = records(request, caller)
        record = await service.get(kind, record_id)
        person = record_id if kind is Person else getattr(record, "person_id", None)
        if person is not None:
            await check_person(request, caller, repository(request), str(person))
        shown = read_shown(request, caller, record, version=await service.version_of(kind, record_id))
        audit(request, caller, "read", [record])
        return shown

    async def put(
        record_id: RecordId,
        record: Any,
        request: Request,
        caller: CallerDep,
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        same_id(getattr(record, "id", None), record_id)
        named = record_id if kind is Person else record.person_id
        await authorise_write(request, caller, kind, record_id, new_person=named)

        async def write(_seed: str | None) -> Response:
            stored = record.model_copy(update={"id": record_id})
            saved = await records(request, caller).put(stored, if_match=parse_if_match(if_match))
            audit(request, caller, "create" if saved.created else "update", [saved.record])
            return saved_shown(caller, saved, collection)

        return await idempotent(request, caller, idempotency_key, write)

    async def for_person(
        request: Request, caller: CallerDep, person_id: Annotated[RecordId, Query(description="The young person's id")]
    ) -> Response:
        await check_person(request, caller, repository(request), person_id, "search-type")
        found = await records(request, caller).for_person(kind, person_id)
        shown = found if may_see_kind(caller, kind) else []  # a kind outside the profile: absent from the list
        audit(request, caller, "search-type", shown, query=f"{collection}?person_id={person_id}", person_id=person_id)
        return list_shown(caller, shown)

    # The body's type is the record kind: set on the annotations FastAPI reads, so OpenAPI documents the record.
    create.__annotations__["record"] = kind
    put.__annotations__["record"] = kind
    if creatable:
        router.add_api_route(
            f"/{collection}",
            create,
            methods=["POST"],
            status_code=201,
            response_model=kind,
            response_model_exclude_none=True,
            summary=f"Create a {name}",
            operation_id=f"create_{collection.replace('-', '_')}",
        )
    router.add_api_route(
        f"/{collection}/{{record_id}}",
        read,
        methods=["GET"],
        response_model=kind,
        response_model_exclude_none=True,
        summary=f"Read a {name}",
        operation_id=f"read_{collection.replace('-', '_')}",
    )
    router.add_api_route(
        f"/{collection}/{{record_id}}",
        put,
        methods=["PUT"],
        response_model=kind,
        response_model_exclude_none=True,
        summary=f"Create or replace a {name} under a chosen id",
        operation_id=f"put_{collection.replace('-', '_')}",
    )
    if listed_by_person:
        router.add_api_route(
            f"/{collection}",
            for_person,
            methods=["GET"],
            summary=f"A person's {name} records",
            operation_id=f"list_{collection.replace('-', '_')}",
        )
