"""The access rules on the domain API, as on FHIR: who may read or write a person's records, and what of them.

- Reads need a legitimate relationship with the person (:func:`gateway.api.access.check_person`); lists leave out
  the people the caller may not see.
- Answers (reads, lists, and the records writes answer with) are reduced to the caller's sharing profile
  (:mod:`gateway.api.v1.minimise`): a read of a kind the profile does not include is 403 (audited), a list leaves
  such records out, a write of one answers with its id only.
- Writes about a person the gateway holds need the relationship too (:mod:`gateway.api.write_access`): the person
  the stored record is about and the person the new one names; creating a person or a register entry needs none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel
from starlette.responses import Response

from gateway.api.access import Screen, person_of
from gateway.api.deps import repository
from gateway.api.v1.common import JSON, PREFIX
from gateway.api.v1.minimise import MAIN_TYPES, minimised
from gateway.api.write_access import RELATIONSHIP_TYPES, WriteScreen
from gateway.auth import Caller
from gateway.domain.service import Saved, record_id_of
from gateway.errors import Forbidden
from mappings.keyworking.records import Person, RegisterEntry

M = TypeVar("M", bound=BaseModel)


def person_of_record(record: BaseModel) -> str | None:
    """The person a record is about (a person: themselves)."""
    if isinstance(record, Person):
        return record.id
    person = getattr(record, "person_id", None)
    return person if isinstance(person, str) else None


async def stored_person(request: Request, res_type: str, res_id: str) -> str | None:
    """The person the stored resource (a record's main resource) is about; None when it is not stored."""
    found = (await repository(request).read_current([(res_type, res_id)]))[0]
    return person_of(found) if found is not None else None


async def authorise_write(
    request: Request,
    caller: Caller,
    kind: type[BaseModel],
    record_id: str | None,
    *,
    new_person: str | None = None,
    interaction: str = "update",
) -> list[str]:
    """Forbidden (403, audited) unless the caller may write this ``kind`` record: the person the stored record (if
    any) is about, and ``new_person``, the person the new version names. Returns the people the write concerns."""
    res_type = MAIN_TYPES[kind]
    before = await stored_person(request, res_type, record_id) if record_id is not None else None
    screen = WriteScreen(request, caller, repository(request))
    people = await screen.authorise_people(
        interaction,
        (f"{res_type}/{record_id}",) if record_id else (res_type,),
        changed=[before] if before is not None else [],
        named=[new_person] if new_person is not None else [],
        new_register_entry=kind is RegisterEntry and before is None,
    )
    if res_type in RELATIONSHIP_TYPES:
        screen.relationships_changed(res_type, people)
    return people


def shown_answer(
    caller: Caller,
    saved_or_record: Saved[Any] | BaseModel,
    *,
    status: int = 200,
    location: str | None = None,
    version: int | None = None,
) -> Response:
    """A record as the caller may see it, with its version as ETag and, for a create, its Location. A write's
    record of a kind the caller may not see answers with its id only."""
    if isinstance(saved_or_record, Saved):
        record, version = saved_or_record.record, saved_or_record.version
    else:
        record = saved_or_record
    body = minimised(caller, record)
    if body is None:
        body = {"id": getattr(record, "id", None)}
    headers = {}
    if version is not None:
        headers["ETag"] = f'W/"{version}"'
    if location is not None:
        headers["Location"] = location
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def saved_shown(caller: Caller, saved: Saved[Any], collection: str) -> Response:
    """201 with Location for a record this write created, 200 otherwise; as the caller may see it."""
    if saved.created:
        location = f"{PREFIX}/{collection}/{record_id_of(saved.record)}"
        return shown_answer(caller, saved, status=201, location=location)
    return shown_answer(caller, saved)


def read_shown(request: Request, caller: Caller, record: BaseModel, *, version: int | None = None) -> Response:
    """A read's answer as the caller may see it; 403 (audited) when its profile has no such record."""
    body = minimised(caller, record)
    if body is None:
        raise refused_by_profile(request, caller, person_of_record(record), f"{type(record).__name__} records")
    headers = {"ETag": f'W/"{version}"'} if version is not None else {}
    return Response(orjson.dumps(body), media_type=JSON, headers=headers)


def refused_by_profile(request: Request, caller: Caller, person: str | None, what: str) -> Forbidden:
    """Audit a read the caller's sharing profile does not allow (outcome 4) and give the error to raise."""
    request.app.state.audit.interaction(
        caller,
        "read",
        patients=(person,) if person else (),
        outcome="4",
        description="refused: not in the sharing profile",
    )
    return Forbidden(f"a {caller.organisation_type} organisation does not receive {what}")


def list_shown(caller: Caller, items: Sequence[BaseModel], *, exclude_none: bool = True) -> Response:
    """A list as the caller may see it: records it may not see at all are left out, the rest reduced."""
    shown = [m for m in (minimised(caller, i, exclude_none=exclude_none) for i in items) if m is not None]
    return Response(orjson.dumps({"items": shown, "total": len(shown)}), media_type=JSON)


async def about_visible_people(
    request: Request, caller: Caller, items: Sequence[M], interaction: str = "search-type"
) -> list[M]:
    """The items about people the caller may see (with a legitimate relationship); break-glass flagged."""
    if caller.development:
        return list(items)
    people = [p for p in (person_of_record(i) for i in items) if p is not None]
    allowed = await Screen(request, caller, repository(request)).allowed_people(people, interaction)
    return [i for i in items if person_of_record(i) in allowed]
