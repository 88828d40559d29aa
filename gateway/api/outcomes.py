"""The one place where errors become OperationOutcome responses."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from gateway.errors import GatewayError, Issue
from mappings.keyworking.errors import ImpossibleTransition

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"

_HTTP_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
}


def operation_outcome(issues: Sequence[Issue]) -> dict[str, object]:
    return {"resourceType": "OperationOutcome", "issue": [i.as_fhir() for i in issues]}


def outcome_response(status: int, issues: Sequence[Issue], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(operation_outcome(issues)), status_code=status, media_type=FHIR_JSON, headers=headers)


def information(message: str) -> dict[str, object]:
    return operation_outcome([Issue("informational", message, severity="information")])


def response_for(exc: GatewayError) -> Response:
    """The OperationOutcome answer for a gateway error (also used by middleware, outside the routes)."""
    return outcome_response(exc.status, exc.issues, exc.headers)


async def _gateway_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return response_for(exc)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "exception")
    return outcome_response(exc.status_code, [Issue(code, str(exc.detail))], dict(exc.headers or {}))


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    issues = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        if loc and loc[0] == "body" and len(loc) > 1:
            loc = loc[1:]  # the body is the record: name its field (nhs_number), not body.nhs_number
        issues.append(Issue("invalid", str(err.get("msg", "invalid")), (_field_path(loc),)))
    return outcome_response(422, issues)


def _field_path(loc: Sequence[object]) -> str:
    """``("members", 2, "end")`` → ``members[2].end``: the way the domain API's errors name a field."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


async def _record_error(_request: Request, exc: Exception) -> Response:
    """A record (or a lifecycle step's result) that fails its model's rules: 422 naming each field."""
    assert isinstance(exc, ValidationError)
    issues = [
        Issue("invalid", str(err.get("msg", "invalid")), (_field_path(err.get("loc", ())),)) for err in exc.errors()
    ]
    return outcome_response(422, issues)


async def _impossible_transition(_request: Request, exc: Exception) -> Response:
    """A move the record's state forbids: 409 with the explanation, naming the field."""
    assert isinstance(exc, ImpossibleTransition)
    return outcome_response(409, [Issue("business-rule", exc.message, (exc.field,))])


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.exception("unexpected error", exc_info=exc)
    return outcome_response(500, [Issue("exception", "internal error; see the gateway log")])


def install(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ValidationError, _record_error)
    app.add_exception_handler(ImpossibleTransition, _impossible_transition)
    app.add_exception_handler(Exception, _unexpected)
