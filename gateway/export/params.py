"""Kick-off parameters of ``$export``, checked (pure): every problem is a 400 naming its parameter."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from gateway.errors import InvalidRequest, Issue
from gateway.store.dates import date_range

#: ``_outputFormat`` values that mean newline-delimited FHIR JSON (the only format produced).
NDJSON_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
#: Parameters of the specification this server does not support: asked for, they are refused, not ignored.
#: Types exported only when ``_type`` names them: the audit trail is not part of a person's record.
ONLY_WHEN_ASKED = frozenset({"AuditEvent"})
UNSUPPORTED = ("_typeFilter", "_elements", "patient", "includeAssociatedData")


@dataclass(frozen=True, slots=True)
class ExportRequest:
    types: tuple[str, ...]  # the resource types to export, sorted
    since: int | None  # microseconds since the epoch: resources last updated after it


def _problem(parameter: str, text: str) -> InvalidRequest:
    return InvalidRequest(f"{parameter}: {text}", [Issue("invalid", f"{parameter}: {text}", (parameter,))])


def parse_since(value: str) -> int:
    """A FHIR instant (with seconds and a time zone) as microseconds since the epoch."""
    if not _INSTANT.match(value):
        raise _problem("_since", f"{value!r} is not a FHIR instant (e.g. 2026-01-31T09:00:00Z)")
    try:
        return date_range(value)[0]
    except ValueError as exc:
        raise _problem("_since", f"{value!r} is not a valid instant") from exc


def parse_types(value: str | None, allowed: Collection[str]) -> tuple[str, ...]:
    if value is None:
        return tuple(sorted(set(allowed) - ONLY_WHEN_ASKED))
    asked = [t.strip() for t in value.split(",")]
    if any(not t for t in asked):
        raise _problem("_type", "an empty type in the list")
    unknown = sorted({t for t in asked if t not in allowed})
    if unknown:
        raise _problem("_type", f"types this export does not hold: {', '.join(unknown)}")
    return tuple(sorted(set(asked)))


def parse_kickoff(
    params: Sequence[tuple[str, str]], headers: Mapping[str, str], allowed: Collection[str]
) -> ExportRequest:
    """Check the kick-off request: ``Prefer: respond-async``, ``Accept``, ``_outputFormat``, ``_type``, ``_since``."""
    prefer = [p.strip().lower() for p in headers.get("prefer", "").split(",")]
    if "respond-async" not in prefer:
        raise _problem("Prefer", "a bulk export needs the header Prefer: respond-async")
    accept = headers.get("accept", "application/fhir+json")
    if not any(
        a.split(";")[0].strip() in ("application/fhir+json", "application/json", "*/*") for a in accept.split(",")
    ):
        raise _problem("Accept", "a bulk export kick-off answers application/fhir+json")
    values: dict[str, list[str]] = {}
    for name, value in params:
        values.setdefault(name, []).append(value)
    for name in UNSUPPORTED:
        if name in values:
            raise _problem(name, "not supported by this server")
    for name, found in values.items():
        if len(found) > 1:
            raise _problem(name, "given more than once")
    fmt = values.get("_outputFormat", ["application/fhir+ndjson"])[0]
    if fmt not in NDJSON_FORMATS:
        raise _problem("_outputFormat", f"{fmt!r} is not produced; use application/fhir+ndjson")
    since_text = values.get("_since", [None])[0]
    return ExportRequest(
        types=parse_types(values.get("_type", [None])[0], allowed),
        since=None if since_text is None else parse_since(since_text),
    )
