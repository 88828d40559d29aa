"""``/admin/destinations`` writes: add, replace and remove destinations without a restart (docs/sync.md).

The body is the Destination model (as in ``KWG_DESTINATIONS_FILE``: names of secret variables, never secrets);
422 names a bad field; 409 when the name is taken or belongs to the file (read-only). Every change is audited.
Removing a destination turns its pending deliveries into dead letters ("destination removed").
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.api.deps import CallerDep
from gateway.auth import Caller
from gateway.errors import Issue, UnprocessableRecord
from gateway.sync import destination_store
from gateway.sync.destinations import Destination

router = APIRouter(prefix="/admin", tags=["Operations"])
JSON = "application/json"


def _file_names(request: Request) -> frozenset[str]:
    return frozenset(d.name for d in request.app.state.destinations)


async def _body(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise UnprocessableRecord("body: not JSON", [Issue("invalid", "the body is not JSON", ("body",))]) from None


def _audit(request: Request, caller: Caller, interaction: str, name: str, description: str) -> None:
    request.app.state.audit.interaction(
        caller, interaction, references=(f"destination/{name}",), description=description
    )


def _shown(destination: Destination, status: int) -> Response:
    data = {**destination.model_dump(mode="json"), "source": "api"}
    return Response(orjson.dumps(data), status_code=status, media_type=JSON)


@router.post("/destinations", status_code=201)
async def add_destination(request: Request, caller: CallerDep) -> Response:
    """Add a destination (201). 409 if the name is taken (here or in the destinations file)."""
    destination = destination_store.parse_body(await _body(request))
    await destination_store.save(request.app.state.engine, destination, _file_names(request), replace=False)
    _audit(request, caller, "create", destination.name, "destination added")
    return _shown(destination, 201)


@router.put("/destinations/{name}")
async def replace_destination(name: str, request: Request, caller: CallerDep) -> Response:
    """Replace a destination made through the API (200), or add it under this name (201)."""
    destination = destination_store.parse_body(await _body(request), name=name)
    created = await destination_store.save(request.app.state.engine, destination, _file_names(request), replace=True)
    _audit(request, caller, "create" if created else "update", name, "destination added" if created else "replaced")
    return _shown(destination, 201 if created else 200)


@router.delete("/destinations/{name}")
async def remove_destination(name: str, request: Request, caller: CallerDep) -> Response:
    """Remove a destination made through the API; its pending deliveries become dead letters."""
    dead = await destination_store.remove(request.app.state.engine, name, _file_names(request))
    _audit(request, caller, "delete", name, f"destination removed; {dead} pending delivery(ies) dead-lettered")
    return Response(orjson.dumps({"removed": name, "dead_lettered": dead}), media_type=JSON)
