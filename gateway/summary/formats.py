"""Which representation of the summary a request asks for: ``_format`` first, then ``Accept`` (by quality, then
order); FHIR JSON when neither says. A request that admits none of JSON, HTML or PDF is refused (406)."""

from __future__ import annotations

from enum import StrEnum

from gateway.api.negotiation import JSON_FORMATS
from gateway.errors import NotAcceptable


class SummaryFormat(StrEnum):
    JSON = "json"
    HTML = "html"
    PDF = "pdf"


MEDIA_TYPES = {
    SummaryFormat.JSON: "application/fhir+json",
    SummaryFormat.HTML: "text/html; charset=utf-8",
    SummaryFormat.PDF: "application/pdf",
}

_NAMES: dict[str, SummaryFormat] = dict.fromkeys(JSON_FORMATS | {"*/*", "application/*"}, SummaryFormat.JSON)
_NAMES |= {"html": SummaryFormat.HTML, "text/html": SummaryFormat.HTML, "text/*": SummaryFormat.HTML}
_NAMES |= {"pdf": SummaryFormat.PDF, "application/pdf": SummaryFormat.PDF}


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value.strip())))
            except ValueError:
                return 0.0
    return 1.0


def from_accept(accept: str) -> SummaryFormat | None:
    """The best format an Accept header admits, or None when it admits none we produce."""
    best: tuple[float, int, SummaryFormat] | None = None
    for position, part in enumerate(p for p in accept.split(",") if p.strip()):
        media, *params = part.split(";")
        found = _NAMES.get(media.strip().lower())
        quality = _quality(params)
        if found is None or quality <= 0:
            continue
        if best is None or (quality, -position) > (best[0], -best[1]):
            best = (quality, position, found)
    return None if best is None else best[2]


def choose(format_param: str | None, accept: str | None) -> SummaryFormat:
    if format_param is not None:
        found = _NAMES.get(format_param.split(";")[0].strip().lower())
        if found is None:
            raise NotAcceptable(f"_format {format_param!r} is not supported here; use json, html or pdf")
        return found
    if not accept or not accept.strip():
        return SummaryFormat.JSON
    found = from_accept(accept)
    if found is None:
        raise NotAcceptable(f"Accept {accept!r} admits none of application/fhir+json, text/html, application/pdf")
    return found
