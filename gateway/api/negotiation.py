"""Content negotiation: the gateway speaks FHIR JSON only; a request that accepts nothing else gets 406."""

from __future__ import annotations

from fastapi import Request

from gateway.errors import NotAcceptable

JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json", "application/json+fhir", "text/json"})
ACCEPTABLE_RANGES = JSON_FORMATS | {"*/*", "application/*"}


def _media_types(header: str) -> list[str]:
    return [part.split(";")[0].strip().lower() for part in header.split(",") if part.strip()]


async def check_format(request: Request) -> None:
    """Refuse ``_format`` values and ``Accept`` headers that admit no JSON representation."""
    requested = request.query_params.get("_format")
    if requested is not None and requested.split(";")[0].strip().lower() not in JSON_FORMATS:
        raise NotAcceptable(f"_format {requested!r} is not supported; this server produces application/fhir+json")
    accept = request.headers.get("accept")
    if accept:
        types = _media_types(accept)
        if types and not any(t in ACCEPTABLE_RANGES for t in types):
            raise NotAcceptable(f"Accept {accept!r} admits no format this server produces (application/fhir+json)")
