"""FHIR R4 REST interactions at ``/fhir``: thin routes over the repository.

Reads answer with the stored JSON bytes. Writes answer after the repository's transaction has committed.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from gateway.api.access import check_read, visible
from gateway.api.bundles import process_bundle
from gateway.api.deps import CallerDep, repository
from gateway.api.outcomes import FHIR_JSON, information
from gateway.api.provenance import write_with_provenance
from gateway.api.render import render_history, render_search
from gateway.audit.trail import AuditTrail
from gateway.auth import Caller
from gateway.errors import (
    InvalidRequest,
    InvalidResource,
    Issue,
    PayloadTooLarge,
    UnsupportedMediaType,
    UnsupportedResourceType,
)
from gateway.store.records import Outcome, StoredResource, WriteResult
from gateway.store.timeutil import to_http_date
from gateway.sync import subscriptions
from mappings.fhir import is_supported_type

router = APIRouter(prefix="/fhir", tags=["FHIR R4"])

ACCEPTED_BODY_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
CONTROL_PARAMS = ("_format", "_pretty")


def resource_type(res_type: str) -> str:
    if not is_supported_type(res_type):
        raise UnsupportedResourceType(f"resource type {res_type!r} is not served by this gateway")
    return res_type


#: For routes outside this module (operations); the hot routes below check the type inline (one dependency less).
async def _checked_type(res_type: str) -> str:
    return resource_type(res_type)  # async: FastAPI would run a plain function in its thread pool


TypeDep = Annotated[str, Depends(_checked_type)]


def base_url(request: Request) -> str:
    configured = request.app.state.settings.base_url
    if configured:
        return str(configured).rstrip("/")
    return str(request.base_url).rstrip("/") + "/fhir"


async def read_body(request: Request) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type not in ACCEPTED_BODY_TYPES:
        raise UnsupportedMediaType(f"content type {content_type!r} is not accepted; send application/fhir+json")
    limit = request.app.state.settings.max_request_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    raw = await request.body()
    if len(raw) > limit:
        raise PayloadTooLarge(f"the body is {len(raw)} bytes; the limit is {limit}")
    if not raw:
        raise InvalidRequest("the request has no body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidResource(
            "the body is not valid JSON", issues=[Issue("structure", f"invalid JSON: {exc}")]
        ) from exc


def parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit():
        raise InvalidRequest(f'If-Match {value!r} is not a version ETag like W/"3"')
    return int(text)


def trail(request: Request) -> AuditTrail:
    found: AuditTrail = request.app.state.audit
    return found


def query_params(request: Request) -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.query_params.multi_items() if k not in CONTROL_PARAMS]


def resource_headers(stored: StoredResource, base: str) -> dict[str, str]:
    headers = {"ETag": stored.etag, "Last-Modified": to_http_date(stored.last_updated)}
    headers["Location"] = f"{base}/{stored.res_type}/{stored.res_id}/_history/{stored.version_id}"
    return headers


def read_response(stored: StoredResource) -> Response:
    assert stored.content is not None
    return Response(
        stored.content,
        media_type=FHIR_JSON,
        headers={"ETag": stored.etag, "Last-Modified": to_http_date(stored.last_updated)},
    )


def write_response(request: Request, result: WriteResult, status: int) -> Response:
    stored = result.resource
    if stored is None:
        return Response(status_code=204)
    headers = resource_headers(stored, base_url(request))
    prefer = request.headers.get("prefer", "")
    if "return=minimal" in prefer:
        return Response(status_code=status, headers=headers)
    if "return=OperationOutcome" in prefer:
        body = orjson.dumps(information(f"{result.outcome.value} {stored.reference} version {stored.version_id}"))
        return Response(body, status_code=status, media_type=FHIR_JSON, headers=headers)
    return Response(stored.content or b"", status_code=status, media_type=FHIR_JSON, headers=headers)


def _status_for(result: WriteResult) -> int:
    return 201 if result.outcome is Outcome.CREATED else 200


def _lenient(request: Request) -> bool:
    return "handling=lenient" in request.headers.get("prefer", "")


def _if_none_exist(request: Request) -> list[tuple[str, str]] | None:
    header = request.headers.get("if-none-exist")
    if not header:
        return None
    text = header.split("?", 1)[1] if "?" in header else header
    return parse_qsl(text, keep_blank_values=True)


# -- system level ----------------------------------------------------------------------------------------------


@router.post("", summary="Process a batch or transaction Bundle")
async def bundle(request: Request, caller: CallerDep) -> Response:
    repo = repository(request)
    body = await read_body(request)
    result = await process_bundle(repo, body, base_url(request), prefer=request.headers.get("prefer", ""))
    kind = body.get("type") if isinstance(body, dict) else None
    trail(request).interaction(caller, "transaction" if kind == "transaction" else "batch", references=("Bundle",))
    return Response(result, media_type=FHIR_JSON)


@router.get("/_history", summary="History of all resources")
async def system_history(request: Request, caller: CallerDep) -> Response:
    repo = repository(request)
    trail(request).interaction(caller, "history-system", query=str(request.url.query))
    return await render_history(request, repo, None, None, base_url(request))


# -- type level -----------------------------------------------------------------------------------------------


@router.get("/{res_type}", summary="Search")
async def search(res_type: str, request: Request, caller: CallerDep) -> Response:
    res_type = resource_type(res_type)
    repo = repository(request)
    result = await visible(
        request, caller, repo, await repo.search(res_type, query_params(request), strict=not _lenient(request))
    )
    trail(request).interaction(caller, "search-type", tuple(result.matches), query=f"{res_type}?{request.url.query}")
    return render_search(result, res_type, base_url(request))


@router.post("/{res_type}/_search", summary="Search by POST (form-encoded parameters)")
async def search_post(res_type: str, request: Request, caller: CallerDep) -> Response:
    res_type = resource_type(res_type)
    repo = repository(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("application/x-www-form-urlencoded", ""):
        raise UnsupportedMediaType("search by POST takes application/x-www-form-urlencoded parameters")
    raw = await request.body()
    if len(raw) > request.app.state.settings.max_request_bytes:
        raise PayloadTooLarge("the search parameters are larger than the request limit")
    form = parse_qsl(raw.decode("utf-8", errors="strict"), keep_blank_values=True)
    params = query_params(request) + [(k, v) for k, v in form if k not in CONTROL_PARAMS]
    result = await visible(request, caller, repo, await repo.search(res_type, params, strict=not _lenient(request)))
    query = f"{res_type}?" + "&".join(f"{k}={v}" for k, v in params)
    trail(request).interaction(caller, "search-type", tuple(result.matches), query=query)
    return render_search(result, res_type, base_url(request))


@router.post("/{res_type}", summary="Create (conditional with If-None-Exist)")
async def create(res_type: str, request: Request, caller: CallerDep) -> Response:
    res_type = resource_type(res_type)
    repo = repository(request)
    body = await read_body(request)
    if isinstance(body, dict) and body.get("resourceType") != res_type:
        raise InvalidResource(
            f"resourceType {body.get('resourceType')!r} does not match the endpoint {res_type!r}",
            issues=[Issue("invalid", f"expected {res_type}", (f"{res_type}.resourceType",))],
        )
    if not isinstance(body, dict):
        raise InvalidResource("the body is not a JSON object")
    body.pop("id", None)  # the server assigns ids on create
    if res_type == "Subscription":
        body = await subscriptions.accept(repo, caller, body)
    criteria = _if_none_exist(request)
    result = await write_with_provenance(repo, caller, lambda r: r.create(body, if_none_exist=criteria))
    await _subscription_owner(request, caller, result)
    _audit_write(request, caller, "create", result)
    return write_response(request, result, _status_for(result))


@router.put("/{res_type}", summary="Conditional update")
async def conditional_update(res_type: str, request: Request, caller: CallerDep) -> Response:
    res_type = resource_type(res_type)
    repo = repository(request)
    criteria = query_params(request)
    if not criteria:
        raise InvalidRequest("a conditional update needs search criteria in the URL")
    body = await read_body(request)
    result = await repo.conditional_update(
        res_type, criteria, body, if_match=parse_if_match(request.headers.get("if-match"))
    )
    _audit_write(request, caller, "create" if result.outcome is Outcome.CREATED else "update", result)
    return write_response(request, result, _status_for(result))


@router.delete("/{res_type}", summary="Conditional delete")
async def conditional_delete(res_type: str, request: Request, caller: CallerDep) -> Response:
    res_type = resource_type(res_type)
    repo = repository(request)
    criteria = query_params(request)
    if not criteria:
        raise InvalidRequest("a conditional delete needs search criteria in the URL")
    results = await repo.conditional_delete(res_type, criteria)
    deleted = sum(1 for r in results if r.outcome is Outcome.DELETED)
    refs = tuple(r.resource.reference for r in results if r.resource is not None)
    trail(request).interaction(caller, "delete", references=refs, query=f"{res_type}?{request.url.query}")
    return Response(orjson.dumps(information(f"deleted {deleted} {res_type}")), media_type=FHIR_JSON)


@router.get("/{res_type}/_history", summary="History of a resource type")
async def type_history(res_type: str, request: Request, caller: CallerDep) -> Response:
    res_type = resource_type(res_type)
    repo = repository(request)
    trail(request).interaction(caller, "history-type", query=f"{res_type}/_history?{request.url.query}")
    return await render_history(request, repo, res_type, None, base_url(request))


# -- instance level --------------------------------------------------------------------------------------------


@router.get("/{res_type}/{res_id}", summary="Read")
async def read(res_type: str, res_id: str, request: Request, caller: CallerDep) -> Response:
    res_type = resource_type(res_type)
    repo = repository(request)
    stored = await check_read(request, caller, repo, await repo.read(res_type, res_id))
    trail(request).interaction(caller, "read", (stored,))
    return read_response(stored)


@router.put("/{res_type}/{res_id}", summary="Update (or create with a client-assigned id); If-Match honoured")
async def update(res_type: str, res_id: str, request: Request, caller: CallerDep) -> Response:
    res_type = resource_type(res_type)
    repo = repository(request)
    body = await read_body(request)
    if res_type == "Subscription":
        body = await subscriptions.accept(repo, caller, body)
    version = parse_if_match(request.headers.get("if-match"))
    result = await write_with_provenance(repo, caller, lambda r: r.update(res_type, res_id, body, if_match=version))
    await _subscription_owner(request, caller, result)
    _audit_write(request, caller, "create" if result.outcome is Outcome.CREATED else "update", result)
    return write_response(request, result, _status_for(result))


@router.delete("/{res_type}/{res_id}", summary="Delete")
async def delete(res_type: str, res_id: str, request: Request, caller: CallerDep) -> Response:
    res_type = resource_type(res_type)
    repo = repository(request)
    result = await repo.delete(res_type, res_id)
    trail(request).interaction(caller, "delete", references=(f"{res_type}/{res_id}",))
    headers = {"ETag": result.resource.etag} if result.resource else {}
    return Response(status_code=204, headers=headers)


@router.get("/{res_type}/{res_id}/_history", summary="History of a resource")
async def instance_history(res_type: str, res_id: str, request: Request, caller: CallerDep) -> Response:
    res_type = resource_type(res_type)
    repo = repository(request)
    trail(request).interaction(caller, "history-instance", references=(f"{res_type}/{res_id}",))
    return await render_history(request, repo, res_type, res_id, base_url(request))


@router.get("/{res_type}/{res_id}/_history/{version_id}", summary="Read a version (vread)")
async def vread(res_type: str, res_id: str, version_id: str, request: Request, caller: CallerDep) -> Response:
    res_type = resource_type(res_type)
    repo = repository(request)
    if not version_id.isdigit():
        raise InvalidRequest(f"version {version_id!r} is not a number")
    stored = await check_read(request, caller, repo, await repo.vread(res_type, res_id, int(version_id)))
    trail(request).interaction(caller, "vread", (stored,))
    return read_response(stored)


def _audit_write(request: Request, caller: Caller, interaction: str, result: WriteResult) -> None:
    if result.resource is not None:
        trail(request).interaction(caller, interaction, (result.resource,))


async def _subscription_owner(request: Request, caller: Caller, result: WriteResult) -> None:
    """A Subscription's notifications carry what its creator may see: remember the creator (gateway.sync)."""
    if result.resource is not None and result.resource.res_type == "Subscription":
        await subscriptions.record_owner(request.app.state.engine, result.resource.res_id, caller)
