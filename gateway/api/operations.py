"""FHIR operations at ``/fhir``: ``$validate`` on a type and on an instance.

``$validate`` answers an OperationOutcome with status 200 whether or not the resource is valid (FHIR R4
Resource-validate); the issues say what is wrong. The body is the resource itself or a Parameters resource with a
``resource`` part (and optionally ``profile``); ``?profile=`` may name the profile too. Nothing is written.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.api.deps import CallerDep, RepositoryDep
from gateway.api.fhir import TypeDep, read_body
from gateway.api.outcomes import FHIR_JSON, operation_outcome
from gateway.errors import InvalidRequest, Issue
from gateway.validation import validate_fully

router = APIRouter(prefix="/fhir", tags=["FHIR R4 operations"])

ALL_OK = Issue("informational", "no problems found", severity="information")


def unpack_parameters(body: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str], str | None]:
    """(resource, profiles, mode) from a $validate body: a bare resource or a Parameters resource."""
    if body.get("resourceType") != "Parameters":
        return body, [], None
    resource: dict[str, Any] | None = None
    profiles: list[str] = []
    mode: str | None = None
    for part in body.get("parameter", []):
        if not isinstance(part, dict):
            continue
        name = part.get("name")
        if name == "resource" and isinstance(part.get("resource"), dict):
            resource = part["resource"]
        elif name == "profile":
            value = part.get("valueUri") or part.get("valueCanonical")
            if isinstance(value, str):
                profiles.append(value)
        elif name == "mode":
            value = part.get("valueCode")
            mode = value if isinstance(value, str) else None
    return resource, profiles, mode


def _outcome(issues: list[Issue]) -> Response:
    return Response(orjson.dumps(operation_outcome(issues or [ALL_OK])), media_type=FHIR_JSON)


def _check(resource: dict[str, Any], res_type: str, profiles: list[str]) -> list[Issue]:
    declared = resource.get("resourceType")
    if declared != res_type:
        return [Issue("invalid", f"resourceType {declared!r} does not match the endpoint type {res_type!r}")]
    return validate_fully(resource, profiles)


async def _request_profiles(request: Request) -> list[str]:
    return request.query_params.getlist("profile")


@router.post("/{res_type}/$validate", summary="Validate a resource (nothing is written)")
async def validate_type(res_type: TypeDep, request: Request, caller: CallerDep) -> Response:
    body = await read_body(request)
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a resource or a Parameters resource")
    resource, profiles, _mode = unpack_parameters(body)
    if resource is None:
        raise InvalidRequest("the Parameters resource has no 'resource' part")
    return _outcome(_check(resource, res_type, profiles + await _request_profiles(request)))


@router.post("/{res_type}/{res_id}/$validate", summary="Validate a resource for an update (or the stored one)")
async def validate_instance(
    res_type: TypeDep, res_id: str, request: Request, repo: RepositoryDep, caller: CallerDep
) -> Response:
    raw = await request.body()
    profiles = await _request_profiles(request)
    if raw.strip():
        body = await read_body(request)
        if not isinstance(body, dict):
            raise InvalidRequest("the body must be a resource or a Parameters resource")
        resource, body_profiles, mode = unpack_parameters(body)
        profiles += body_profiles
        if resource is None:
            if mode == "delete":
                await repo.read(res_type, res_id)
                return _outcome([])
            stored = await repo.read(res_type, res_id)
            resource = orjson.loads(stored.content or b"{}")
    else:
        stored = await repo.read(res_type, res_id)
        resource = orjson.loads(stored.content or b"{}")
    assert resource is not None
    issues = _check(resource, res_type, profiles)
    if resource.get("id") not in (None, res_id):
        issues.append(Issue("invalid", f"the resource id {resource.get('id')!r} is not {res_id!r}", ("id",)))
    return _outcome(issues)
