"""FHIR Bulk Data export (v2): kick-off (system, Patient, Group), status, cancel, file download.

The kick-off checks the request, records a job in the database and queues ``kwg.bulk_export`` for a Celery worker;
the answer is 202 with the status URL in ``Content-Location``. Only the client that started a job sees it (others
get 404, as for an unknown job). A system-level export is for an ICB client with a ``system/*`` read scope (or the
development caller). One AuditEvent per kick-off and per file downloaded. See docs/bulk-export.md.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from gateway.api.deps import CallerDep
from gateway.api.fhir import base_url
from gateway.auth import Caller
from gateway.errors import Forbidden, GatewayError, NotFound
from gateway.export import jobs
from gateway.export.params import parse_kickoff
from gateway.export.run import job_folder, remove_files
from gateway.export.scope import Kind, exportable_types
from gateway.security.scopes import allows, parse_scopes
from gateway.store.timeutil import to_instant

log = logging.getLogger(__name__)
router = APIRouter(prefix="/fhir", tags=["FHIR Bulk Data export"])

#: Organisation types that may export the whole system (every person): the ICB, which holds the register.
SYSTEM_EXPORT_TYPES = frozenset({"icb"})
RETRY_AFTER = "2"
NDJSON = "application/fhir+ndjson"


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/fhir+json", headers=headers)


def may_export_system(caller: Caller) -> bool:
    if caller.development:
        return True
    wildcard_read = any(s.resource_type == "*" and "r" in s.permissions for s in parse_scopes(" ".join(caller.scopes)))
    return wildcard_read and caller.organisation_type in SYSTEM_EXPORT_TYPES


def readable(caller: Caller, types: tuple[str, ...]) -> tuple[str, ...]:
    """The types the caller's scopes let it read (the development caller: all)."""
    if caller.development:
        return types
    scopes = " ".join(caller.scopes)
    return tuple(t for t in types if allows(scopes, t, "read"))


async def _kick_off(request: Request, caller: Caller, kind: Kind, group_id: str | None = None) -> Response:
    allowed = exportable_types(kind)
    asked = parse_kickoff(list(request.query_params.multi_items()), request.headers, allowed)
    if kind is Kind.SYSTEM and not may_export_system(caller):
        raise Forbidden("a system-level export needs an ICB client with a system/*.read scope")
    types = readable(caller, asked.types)
    if "_type" in request.query_params and types != asked.types:
        raise Forbidden(f"your scopes do not allow reading {', '.join(sorted(set(asked.types) - set(types)))}")
    if not types:
        raise Forbidden("your scopes allow reading none of the types this export holds")
    if kind is Kind.GROUP:
        assert group_id is not None
        await request.app.state.repository.read("Group", group_id)  # 404 / 410 for an unknown or deleted Group
    job_id = str(uuid.uuid4())
    engine = request.app.state.engine
    await jobs.create(
        engine, job_id, caller, kind, types, since=asked.since, group_id=group_id, request_url=str(request.url)
    )
    _queue(request, job_id)
    request.app.state.audit.interaction(
        caller,
        "operation",
        references=(f"Group/{group_id}",) if group_id else (),
        query=f"{request.url.path}?{request.url.query}" if request.url.query else request.url.path,
        description=f"bulk export {job_id} ({kind.value}) accepted",
    )
    return Response(status_code=202, headers={"Content-Location": f"{base_url(request)}/$export-status/{job_id}"})


def _queue(request: Request, job_id: str) -> None:
    """Queue the job for a worker; a broker that is down is logged (the job waits in the database)."""
    from gateway.sync.worker import BULK_EXPORT, create_celery

    if getattr(request.app.state, "celery", None) is None:
        request.app.state.celery = create_celery(request.app.state.settings)
    try:
        request.app.state.celery.send_task(BULK_EXPORT, args=[job_id], retry=False)
    except Exception as exc:  # kombu raises several types for an unreachable broker
        log.warning("could not queue bulk export %s: %s", job_id, type(exc).__name__)


@router.get("/$export", summary="Bulk export of every resource (system level)")
async def export_system(request: Request, caller: CallerDep) -> Response:
    return await _kick_off(request, caller, Kind.SYSTEM)


@router.get("/Patient/$export", summary="Bulk export of every Patient and their compartments")
async def export_patients(request: Request, caller: CallerDep) -> Response:
    return await _kick_off(request, caller, Kind.PATIENT)


@router.get("/Group/{group_id}/$export", summary="Bulk export of a Group's member Patients and their compartments")
async def export_group(group_id: str, request: Request, caller: CallerDep) -> Response:
    return await _kick_off(request, caller, Kind.GROUP, group_id)


async def _own_job(request: Request, caller: Caller, job_id: str) -> jobs.Job:
    job = await jobs.load(request.app.state.engine, job_id)
    if job is None or job.caller.client_id != caller.client_id:
        raise NotFound(f"no export job {job_id} for this client")
    return job


def manifest(job: jobs.Job, base: str) -> dict[str, Any]:
    return {
        "transactionTime": to_instant(job.transaction_time),
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": [
            {"type": f.res_type, "url": f"{base}/$export-file/{job.id}/{f.name}", "count": f.count} for f in job.output
        ],
        "error": [],
    }


@router.get("/$export-status/{job_id}", summary="Bulk export status: 202 while running, the manifest when done")
async def export_status(job_id: str, request: Request, caller: CallerDep) -> Response:
    job = await _own_job(request, caller, job_id)
    if job.status == jobs.DONE:
        return _json(manifest(job, base_url(request)), headers={"Expires": "0", "Cache-Control": "no-store"})
    if job.status == jobs.FAILED:
        raise GatewayError(f"the export failed: {job.error or 'unknown error'}")
    return Response(status_code=202, headers={"X-Progress": job.progress or job.status, "Retry-After": RETRY_AFTER})


@router.delete("/$export-status/{job_id}", summary="Cancel a bulk export and delete its files")
async def cancel_export(job_id: str, request: Request, caller: CallerDep) -> Response:
    await _own_job(request, caller, job_id)
    await jobs.remove(request.app.state.engine, job_id)
    remove_files(request.app.state.settings, job_id)
    return _json(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "information", "code": "informational", "diagnostics": "export cancelled"}],
        },
        status=202,
    )


@router.get("/$export-file/{job_id}/{name}", summary="One ndjson file of a finished bulk export")
async def export_file(job_id: str, name: str, request: Request, caller: CallerDep) -> Response:
    job = await _own_job(request, caller, job_id)
    found = next((f for f in job.output if f.name == name), None)
    path = job_folder(request.app.state.settings, job_id) / name
    if job.status != jobs.DONE or found is None or not path.is_file():
        raise NotFound(f"no file {name} in export {job_id}")
    request.app.state.audit.interaction(
        caller,
        "operation",
        query=request.url.path,
        description=f"bulk export {job_id}: {found.count} {found.res_type} resources downloaded",
    )
    return FileResponse(path, media_type=NDJSON, headers={"Cache-Control": "no-store"})
