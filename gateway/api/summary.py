"""``GET /fhir/Patient/{id}/$summary``: the cross-agency keyworking summary of one person, as a FHIR document Bundle
(default), an HTML page (``Accept: text/html`` or ``_format=html``) or a PDF (``application/pdf``, ``_format=pdf``).

Needs a legitimate relationship with the person; every resource is reduced to the caller's sharing profile before
it is shown; one AuditEvent (type operation) lists what the summary included.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from gateway.api.access import check_person
from gateway.api.deps import CallerDep, repository
from gateway.api.fhir import base_url
from gateway.store.timeutil import now_us, to_instant
from gateway.summary.compose import compose
from gateway.summary.formats import MEDIA_TYPES, SummaryFormat, choose
from gateway.summary.page import render_html, render_pdf

router = APIRouter(prefix="/fhir", tags=["FHIR R4 operations"])

#: The page's own stylesheet is inline; nothing else may load (user text in it is escaped by the template).
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


@router.get(
    "/Patient/{patient_id}/$summary",
    summary="Cross-agency keyworking summary (document Bundle, HTML or PDF)",
    responses={200: {"content": {"application/fhir+json": {}, "text/html": {}, "application/pdf": {}}}},
)
async def summary(
    patient_id: str,
    request: Request,
    caller: CallerDep,
    format_param: Annotated[str | None, Query(alias="_format")] = None,
) -> Response:
    wanted = choose(format_param, request.headers.get("accept"))
    repo = repository(request)
    await repo.read("Patient", patient_id)  # 404 / 410 before anything else
    await check_person(request, caller, repo, patient_id)
    made = await compose(repo, caller, patient_id, base=base_url(request), at=to_instant(now_us()))
    request.app.state.audit.interaction(
        caller, "operation", made.included, patients=(patient_id,), query=f"Patient/{patient_id}/$summary"
    )
    headers = {"Cache-Control": "no-store"}
    if wanted is SummaryFormat.JSON:
        body = orjson.dumps(made.bundle)
    elif wanted is SummaryFormat.HTML:
        body = render_html(made).encode()
        headers["Content-Security-Policy"] = PAGE_POLICY
    else:
        body = await run_in_threadpool(render_pdf, render_html(made))
        headers["Content-Disposition"] = f'inline; filename="summary-{patient_id}.pdf"'
    return Response(body, media_type=MEDIA_TYPES[wanted], headers=headers)
