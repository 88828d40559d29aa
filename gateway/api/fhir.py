"""FHIR R4 REST interactions at ``/fhir``: thin routes over the repository.

Reads answer with the stored JSON bytes. Writes answer after the repository's transaction has committed.
Every interaction meets the access rules (:mod:`gateway.api.access`: reads, searches, histories and a Bundle's
GET entries; :mod:`gateway.api.write_access`: writes), and every client's write carries its Provenance
(:mod:`gateway.api.provenance`).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from gateway.api.access import Screen, check_read, visible
from gateway.api.bundles import CallerGuard, process_bundle
from gateway.api.deps import CallerDep, repository
from gateway.api.outcomes import FHIR_JSON, information
from gateway.api.provenance import write_with_provenance, writes_with_provenance
from gateway.api.render import read_history, render_history, render_search
from gateway.api.write_access import WriteScreen
from gateway.audit.trail import MAX_ENTITIES, AuditTrail
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
from gateway.store.repository import FhirRepository
from gateway.store.timeutil import to_http_date
from gateway.sync import subscriptions
from mappings.fhir import is_supported_type

router = APIRouter(prefix="/fhir", tags=["FHIR R4"])

ACCEPTED_BODY_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
CONTROL_PARAMS = ("_format", "_pretty")
#: Search controls that are not criteria (left out when a conditional update's matches are looked up).
NOT_CRITERIA = frozenset({"_count", "_offset", "_sort", "_total", "_summary", "_elements"})


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
    guard = CallerGuard(request, caller, repo)
    prefer = request.headers.get("prefer", "")
    answer = await process_bundle(repo, body, base_url(request), prefer=prefer, guard=guard)
    kind = body.get("type") if isinstance(body, dict) else None
    # The Bundle's AuditEvent names what it wrote and the people its writes concern (AuditEvent?patient= finds it);
    # its GET entries have AuditEvents of their own, as reads and searches.
    trail(request).interaction(
        caller,
        "transaction" if kind == "transaction" else "batch",
        answer.written,
        references=tuple(r.reference for r in answer.written[:MAX_ENTITIES]) or ("Bundle",),
        patients=answer.patients,
    )
    return Response(answer.body, media_type=FHIR_JSON)


async def _history(
    request: Request, caller: Caller, interaction: str, res_type: str | None, res_id: str | None, query: str
) -> Response:
    """A history as the caller may see it (:meth:`Screen.history`), audited with what it showed."""
    repo = repository(request)
    page, kept = await read_history(request, repo, res_type, res_id)
    screen = Screen(request, caller, repo)
    entries = await screen.history(page.entries, interaction, instance=res_id is not None)
    references = (f"{res_type}/{res_id}",) if res_id is not None else ()
    trail(request).interaction(
        caller, interaction, tuple(entries), references=references, patients=tuple(screen.patients), query=query
    )
    return render_history(page, entries, kept, res_type, res_id, base_url(request))


@router.get("/_history", summary="History of all resources")
async def system_history(request: Request, caller: CallerDep) -> Response:
    return await _history(request, caller, "history-system", None, None, f"_history?{request.url.query}")


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
    writes = WriteScreen(request, caller, repo)
    people = await writes.authorise("create", (res_type,), new=[body])
    result = await write_with_provenance(repo, caller, lambda r: r.create(body, if_none_exist=criteria))
    if result.outcome is Outcome.UNCHANGED and result.resource is not None:
        # A conditional create that matched answers with the match: a read of it.
        result = WriteResult(result.outcome, await check_read(request, caller, repo, result.resource))
    writes.relationships_changed(res_type, people)
    await _subscription_owner(request, caller, result)
    _audit_write(request, caller, "create", result, people)
    return write_response(request, result, _status_for(result))


@router.put("/{res_type}", summary="Conditional update")
async def conditional_update(res_type: str, request: Request, caller: CallerDep) -> Response:
    res_type = resource_type(res_type)
    repo = repository(request)
    criteria = query_params(request)
    if not criteria:
        raise InvalidRequest("a conditional update needs search criteria in the URL")
    body = await read_body(request)
    version = parse_if_match(request.headers.get("if-match"))
    matches: list[StoredResource] = []
    if not caller.development:
        lookup = [*[(k, v) for k, v in criteria if k not in NOT_CRITERIA], ("_count", "2"), ("_total", "none")]
        matches = (await repo.search(res_type, lookup)).matches
    writes = WriteScreen(request, caller, repo)
    new = [body] if isinstance(body, dict) else []
    people = await writes.authorise("update", (res_type,), changed=matches, new=new)
    result = await write_with_provenance(
        repo, caller, lambda r: r.conditional_update(res_type, criteria, body, if_match=version)
    )
    writes.relationships_changed(res_type, people)
    _audit_write(request, caller, "create" if result.outcome is Outcome.CREATED else "update", result, people)
    return write_response(request, result, _status_for(result))


@router.delete("/{res_type}", summary="Conditional delete")
async def conditional_delete(res_type: str, request: Request, caller: CallerDep) -> Response:
    res_type = resource_type(res_type)
    repo = repository(request)
    criteria = query_params(request)
    if not criteria:
        raise InvalidRequest("a conditional delete needs search criteria in the URL")
    writes = WriteScreen(request, caller, repo)
    people: list[str] = []

    async def delete_checked(tx: FhirRepository) -> list[WriteResult]:
        # The matches are known once deleted: judged by the versions the deletions removed (refused: rolled back).
        found = await tx.conditional_delete(res_type, criteria)
        if caller.development:
            return found
        removed = [
            await tx.vread(r.resource.res_type, r.resource.res_id, r.resource.version_id - 1)
            for r in found
            if r.outcome is Outcome.DELETED and r.resource is not None and r.resource.version_id > 1
        ]
        people.extend(await writes.authorise("delete", (res_type,), changed=removed, repo=tx))
        return found

    results = await writes_with_provenance(repo, caller, delete_checked)
    writes.relationships_changed(res_type, people)
    deleted = sum(1 for r in results if r.outcome is Outcome.DELETED)
    refs = tuple(r.resource.reference for r in results if r.resource is not None)
    query = f"{res_type}?{request.url.query}"
    trail(request).interaction(caller, "delete", references=refs, patients=tuple(people), query=query)
    return Response(orjson.dumps(information(f"deleted {deleted} {res_type}")), media_type=FHIR_JSON)


@router.get("/{res_type}/_history", summary="History of a resource type")
async def type_history(res_type: str, request: Request, caller: CallerDep) -> Response:
    res_type = resource_type(res_type)
    query = f"{res_type}/_history?{request.url.query}"
    return await _history(request, caller, "history-type", res_type, None, query)


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
    writes = WriteScreen(request, caller, repo)
    current = await current_versions(caller, repo, res_type, res_id)
    new = [body] if isinstance(body, dict) else []
    people = await writes.authorise("update", (f"{res_type}/{res_id}",), changed=current, new=new)
    result = await write_with_provenance(repo, caller, lambda r: r.update(res_type, res_id, body, if_match=version))
    writes.relationships_changed(res_type, people)
    await _subscription_owner(request, caller, result)
    _audit_write(request, caller, "create" if result.outcome is Outcome.CREATED else "update", result, people)
    return write_response(request, result, _status_for(result))


@router.delete("/{res_type}/{res_id}", summary="Delete")
async def delete(res_type: str, res_id: str, request: Request, caller: CallerDep) -> Response:
    res_type = resource_type(res_type)
    repo = repository(request)
    reference = f"{res_type}/{res_id}"
    writes = WriteScreen(request, caller, repo)
    current = await current_versions(caller, repo, res_type, res_id)
    people = await writes.authorise("delete", (reference,), changed=current)
    result = await write_with_provenance(repo, caller, lambda r: r.delete(res_type, res_id))
    writes.relationships_changed(res_type, people)
    trail(request).interaction(caller, "delete", references=(reference,), patients=tuple(people))
    headers = {"ETag": result.resource.etag} if result.resource else {}
    return Response(status_code=204, headers=headers)


@router.get("/{res_type}/{res_id}/_history", summary="History of a resource")
async def instance_history(res_type: str, res_id: str, request: Request, caller: CallerDep) -> Response:
    res_type = resource_type(res_type)
    query = f"{res_type}/{res_id}/_history?{request.url.query}"
    return await _history(request, caller, "history-instance", res_type, res_id, query)


@router.get("/{res_type}/{res_id}/_history/{version_id}", summary="Read a version (vread)")
async def vread(res_type: str, res_id: str, version_id: str, request: Request, caller: CallerDep) -> Response:
    res_type = resource_type(res_type)
    repo = repository(request)
    if not version_id.isdigit():
        raise InvalidRequest(f"version {version_id!r} is not a number")
    stored = await check_read(request, caller, repo, await repo.vread(res_type, res_id, int(version_id)))
    trail(request).interaction(caller, "vread", (stored,))
    return read_response(stored)


async def current_versions(caller: Caller, repo: FhirRepository, res_type: str, res_id: str) -> list[StoredResource]:
    """The version a write replaces or deletes, if any, for the write check (the development caller needs none)."""
    if caller.development:
        return []
    return [c for c in await repo.read_current([(res_type, res_id)]) if c is not None]


def _audit_write(
    request: Request, caller: Caller, interaction: str, result: WriteResult, people: list[str] | None = None
) -> None:
    if result.resource is not None:
        trail(request).interaction(caller, interaction, (result.resource,), patients=tuple(people or ()))


async def _subscription_owner(request: Request, caller: Caller, result: WriteResult) -> None:
    """A Subscription's notifications carry what its creator may see: remember the creator (gateway.sync)."""
    if result.resource is not None and result.resource.res_type == "Subscription":
        await subscriptions.record_owner(request.app.state.engine, result.resource.res_id, caller)
