"""The gateway's exception tree. Every error a caller can see is one of these.

    GatewayError                      500 exception
    ├── InvalidRequest                400 invalid        (malformed request, bad JSON, bad headers)
    │   ├── InvalidResource           400 invalid        (the resource fails validation; issues name the paths)
    │   ├── InvalidSearch             400 invalid        (unknown or malformed search parameter)
    │   └── InvalidBundle             400 invalid        (a batch/transaction Bundle that cannot be processed)
    ├── UnprocessableRecord           422 invalid        (a domain record breaks a business rule on a field)
    ├── NotAuthenticated              401 login
    ├── Forbidden                     403 forbidden
    ├── NotFound                      404 not-found
    │   └── UnsupportedResourceType   404 not-supported
    ├── MethodNotAllowed              405 not-supported
    ├── NotAcceptable                 406 not-supported   (only XML or another format we do not produce)
    ├── Gone                          410 deleted
    ├── Conflict                      409 conflict        (impossible transition, id clash)
    ├── PreconditionFailed            412 conflict        (stale If-Match, several matches on a conditional)
    ├── PayloadTooLarge               413 too-costly
    ├── UnsupportedMediaType          415 not-supported
    ├── TooManyRequests               429 throttled
    └── ServiceUnavailable            503 transient

An error carries one or more :class:`Issue` values; :mod:`gateway.api.outcomes` turns it into an
OperationOutcome with the right HTTP status, in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome.issue: severity, code, human text and the FHIRPath-style element paths."""

    code: str
    diagnostics: str
    expression: tuple[str, ...] = ()
    severity: str = "error"

    def as_fhir(self) -> dict[str, object]:
        out: dict[str, object] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            out["expression"] = list(self.expression)
        return out


class GatewayError(Exception):
    """Base of every error the gateway reports. ``status`` is the HTTP status it maps to."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "exception"

    def __init__(
        self,
        message: str,
        issues: Sequence[Issue] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.issues: list[Issue] = list(issues) or [Issue(code=self.code, diagnostics=message)]
        self.headers: dict[str, str] = dict(headers or {})


class InvalidRequest(GatewayError):
    status, code = 400, "invalid"


class InvalidResource(InvalidRequest):
    """The resource fails structural or profile validation; ``issues`` name the element paths."""


class InvalidSearch(InvalidRequest):
    """An unknown or malformed search parameter."""


class InvalidBundle(InvalidRequest):
    """A batch or transaction Bundle that cannot be processed."""


class UnprocessableRecord(GatewayError):
    """A domain record breaks a rule on a named field."""

    status, code = 422, "invalid"


class NotAuthenticated(GatewayError):
    status, code = 401, "login"


class Forbidden(GatewayError):
    status, code = 403, "forbidden"


class NotFound(GatewayError):
    status, code = 404, "not-found"


class UnsupportedResourceType(NotFound):
    code = "not-supported"


class MethodNotAllowed(GatewayError):
    status, code = 405, "not-supported"


class NotAcceptable(GatewayError):
    status, code = 406, "not-supported"


class Gone(GatewayError):
    status, code = 410, "deleted"


class Conflict(GatewayError):
    """An impossible state transition or an id clash."""

    status, code = 409, "conflict"


class PreconditionFailed(GatewayError):
    """A stale If-Match, or a conditional interaction that matched more than one resource."""

    status, code = 412, "conflict"


class PayloadTooLarge(GatewayError):
    status, code = 413, "too-costly"


class UnsupportedMediaType(GatewayError):
    status, code = 415, "not-supported"


class TooManyRequests(GatewayError):
    status, code = 429, "throttled"


class ServiceUnavailable(GatewayError):
    status, code = 503, "transient"
