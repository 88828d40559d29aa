"""Content negotiation: the gateway speaks FHIR JSON only; a request that accepts nothing else gets 406.

Checked once per request by :class:`FormatNegotiation`, a plain ASGI middleware in front of every ``/fhir`` route
(a route dependency doing the same cost a tenth of a read's time). The refusal is the usual OperationOutcome,
rendered by :func:`gateway.api.outcomes.response_for`.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.api.outcomes import response_for
from gateway.errors import NotAcceptable

JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json", "application/json+fhir", "text/json"})
ACCEPTABLE_RANGES = JSON_FORMATS | {"*/*", "application/*"}
#: Path segment of the bulk export file downloads, which are not FHIR JSON.
EXPORT_FILES = "/$export-file/"
#: The summary operation negotiates its own formats (FHIR JSON, HTML, PDF): gateway/summary/formats.py.
SUMMARY_OPERATION = "/$summary"


def _media_types(header: str) -> list[str]:
    return [part.split(";")[0].strip().lower() for part in header.split(",") if part.strip()]


def format_problem(query_string: str, accept: str | None) -> str | None:
    """Why ``_format`` or ``Accept`` admits no JSON representation, or None when they do."""
    if "_format" in query_string:
        for name, value in parse_qsl(query_string, keep_blank_values=True):
            if name == "_format" and value.split(";")[0].strip().lower() not in JSON_FORMATS:
                return f"_format {value!r} is not supported; this server produces application/fhir+json"
    if accept:
        types = _media_types(accept)
        if types and not any(t in ACCEPTABLE_RANGES for t in types):
            return f"Accept {accept!r} admits no format this server produces (application/fhir+json)"
    return None


class FormatNegotiation:
    """Refuse, with 406, ``/fhir`` requests whose ``_format`` or ``Accept`` admits no JSON."""

    def __init__(self, app: ASGIApp, prefix: str = "/fhir") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Bulk export files are ndjson (Accept: application/fhir+ndjson): gateway/api/export.py answers them.
        if (
            scope["type"] == "http"
            and scope["path"].startswith(self.prefix)
            and EXPORT_FILES not in scope["path"]
            and not scope["path"].endswith(SUMMARY_OPERATION)
        ):
            accept = None
            for name, value in scope["headers"]:
                if name == b"accept":
                    accept = value.decode("latin-1")
                    break
            problem = format_problem(scope.get("query_string", b"").decode("latin-1"), accept)
            if problem is not None:
                await response_for(NotAcceptable(problem))(scope, receive, send)
                return
        await self.app(scope, receive, send)
