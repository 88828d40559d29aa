"""The ``batch-response``/``transaction-response`` Bundle, written from the stored bytes (no decode/encode).

Entries answer in the request's order. Each carries ``response.status`` ("201 Created", "400 Bad Request"...),
and for a resource ``location`` (``Type/id/_history/n``), ``etag`` and ``lastModified``. The resource itself is
included as ``Prefer: return=`` asks (representation by default; minimal; or an OperationOutcome instead).
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from http import HTTPStatus

import orjson

from gateway.api.outcomes import information, operation_outcome
from gateway.bundles.interactions import EntryResult
from gateway.store.timeutil import now_us, to_instant


class ReturnPreference(StrEnum):
    REPRESENTATION = "representation"
    MINIMAL = "minimal"
    OPERATION_OUTCOME = "OperationOutcome"


def return_preference(prefer: str) -> ReturnPreference:
    """The ``return=`` of a ``Prefer`` header (RFC 7240; FHIR http.html#ops)."""
    for token in prefer.split(","):
        for part in token.split(";"):
            name, _, value = part.strip().partition("=")
            if name.strip().lower() == "return":
                value = value.strip().strip('"')
                for choice in ReturnPreference:
                    if value.lower() == choice.value.lower():
                        return choice
    return ReturnPreference.REPRESENTATION


def status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


def render_entry(result: EntryResult, base: str, preference: ReturnPreference) -> bytes:
    response: dict[str, object] = {"status": status_line(result.status)}
    parts: list[bytes] = []
    stored = result.stored
    if result.error is not None:
        response["outcome"] = operation_outcome(result.error.issues)
    elif stored is not None:
        response["location"] = f"{stored.reference}/_history/{stored.version_id}"
        response["etag"] = stored.etag
        response["lastModified"] = to_instant(stored.last_updated)
        if stored.content is not None:
            parts.append(b'"fullUrl":' + orjson.dumps(f"{base}/{stored.reference}"))
            if not result.written or preference is ReturnPreference.REPRESENTATION:
                parts.append(b'"resource":' + stored.content)
            elif preference is ReturnPreference.OPERATION_OUTCOME:
                outcome = result.outcome.value if result.outcome is not None else "written"
                response["outcome"] = information(f"{outcome} {stored.reference} version {stored.version_id}")
    elif result.body is not None:
        parts.append(b'"resource":' + result.body)
    parts.append(b'"response":' + orjson.dumps(response))
    return b"{" + b",".join(parts) + b"}"


def render_response(kind: str, results: list[EntryResult], base: str, preference: ReturnPreference) -> bytes:
    """The whole response Bundle; ``kind`` is the request's type (``batch`` or ``transaction``)."""
    head = orjson.dumps(
        {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "meta": {"lastUpdated": to_instant(now_us())},
            "type": f"{kind}-response",
            "link": [{"relation": "self", "url": base}],
        }
    )
    entries = b",".join(render_entry(r, base, preference) for r in results)
    return head[:-1] + b',"entry":[' + entries + b"]}"
