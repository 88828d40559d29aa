"""Bundles built from stored bytes: searchset and history. No decode/encode of the stored resources."""

from __future__ import annotations

from urllib.parse import urlencode

import orjson
from fastapi import Request
from starlette.responses import Response

from gateway.api.outcomes import FHIR_JSON
from gateway.errors import InvalidRequest
from gateway.store.records import HistoryPage, StoredResource
from gateway.store.repository import FhirRepository
from gateway.store.search import SearchResult
from gateway.store.timeutil import to_instant
from mappings.fhir import summary_elements

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
ALWAYS_KEPT = frozenset({"resourceType", "id", "meta"})


def _link(relation: str, url: str) -> dict[str, str]:
    return {"relation": relation, "url": url}


def _page_url(base: str, path: str, params: list[tuple[str, str]], offset: int, count: int) -> str:
    kept = [(k, v) for k, v in params if k not in ("_offset", "_count")]
    kept += [("_count", str(count)), ("_offset", str(offset))]
    return f"{base}/{path}?{urlencode(kept)}"


def _keeps(key: str, wanted: frozenset[str]) -> bool:
    """An element is kept when named, or when it is a choice of a named one (``effective`` → ``effectiveDateTime``)."""
    if key in wanted:
        return True
    for name in wanted:
        if key.startswith(name) and len(key) > len(name) and key[len(name)].isupper():
            return True
    return False


def subset(stored: StoredResource, summary: str | None, elements: tuple[str, ...] | None) -> bytes:
    """The stored bytes, or the part ``_elements``/``_summary`` asks for, tagged SUBSETTED (FHIR search 3.1.1.5)."""
    assert stored.content is not None
    if elements is None and summary in (None, "false"):
        return stored.content
    doc = orjson.loads(stored.content)
    if elements is not None:
        wanted = ALWAYS_KEPT | frozenset(elements)
        kept = {k: v for k, v in doc.items() if _keeps(k, wanted)}
    elif summary == "true":
        wanted = summary_elements(stored.res_type)
        kept = {k: v for k, v in doc.items() if _keeps(k, wanted)}
    elif summary == "text":
        kept = {k: v for k, v in doc.items() if k in ALWAYS_KEPT or k == "text"}
    else:  # data
        kept = {k: v for k, v in doc.items() if k != "text"}
    meta = dict(kept.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    kept["meta"] = meta
    return orjson.dumps(kept)


def _entry(stored: StoredResource, base: str, mode: str, content: bytes | None = None) -> bytes:
    body = content if content is not None else stored.content
    assert body is not None
    full_url = orjson.dumps(f"{base}/{stored.res_type}/{stored.res_id}")
    return b'{"fullUrl":' + full_url + b',"resource":' + body + b',"search":{"mode":"' + mode.encode() + b'"}}'


def render_search(result: SearchResult, res_type: str, base: str) -> Response:
    links = [_link("self", _page_url(base, res_type, result.params, result.offset, result.count))]
    if result.has_next:
        links.append(
            _link("next", _page_url(base, res_type, result.params, result.offset + result.count, result.count))
        )
    if result.offset > 0:
        prev = max(0, result.offset - result.count)
        links.append(_link("previous", _page_url(base, res_type, result.params, prev, result.count)))
    head: dict[str, object] = {"resourceType": "Bundle", "type": "searchset"}
    if result.total is not None:
        head["total"] = result.total
    head["link"] = links
    entries = [_entry(r, base, "match", subset(r, result.summary, result.elements)) for r in result.matches]
    entries += [_entry(r, base, "include") for r in result.includes]
    body = orjson.dumps(head)[:-1] + b',"entry":[' + b",".join(entries) + b"]}" if entries else orjson.dumps(head)
    return Response(body, media_type=FHIR_JSON)


def _history_entry(stored: StoredResource, base: str) -> bytes:
    url = f"{base}/{stored.res_type}/{stored.res_id}"
    method = {"create": "POST", "update": "PUT", "delete": "DELETE"}[stored.method]
    request = {
        "method": method,
        "url": stored.res_type if method == "POST" else f"{stored.res_type}/{stored.res_id}",
    }
    response = {
        "status": "201 Created" if method == "POST" else ("204 No Content" if method == "DELETE" else "200 OK"),
        "etag": stored.etag,
        "lastModified": to_instant(stored.last_updated),
    }
    parts = [b'"fullUrl":' + orjson.dumps(url)]
    if stored.content is not None:
        parts.append(b'"resource":' + stored.content)
    parts.append(b'"request":' + orjson.dumps(request))
    parts.append(b'"response":' + orjson.dumps(response))
    return b"{" + b",".join(parts) + b"}"


async def read_history(
    request: Request, repo: FhirRepository, res_type: str | None, res_id: str | None
) -> tuple[HistoryPage, list[tuple[str, str]]]:
    """The history page the request asks for (``_since``, ``_count``, ``_offset``) and the parameters its links
    keep. What the caller may see of it is decided by :mod:`gateway.api.access`, then :func:`render_history`."""
    params = list(request.query_params.multi_items())
    known = {"_count", "_offset", "_since", "_format", "_pretty", "_at", "_list"}
    for k, _ in params:
        if k not in known:
            raise InvalidRequest(f"unknown history parameter {k!r}")
    values = dict(params)
    since = None
    if "_since" in values:
        from gateway.store.dates import parse_instant_us

        since = parse_instant_us(values["_since"])
    try:
        count = int(values.get("_count", "20"))
        offset = int(values.get("_offset", "0"))
    except ValueError as exc:
        raise InvalidRequest("_count and _offset must be whole numbers") from exc
    if count < 0 or offset < 0:
        raise InvalidRequest("_count and _offset must not be negative")
    page = await repo.history(res_type, res_id, since=since, offset=offset, count=count)
    return page, [(k, v) for k, v in params if k in ("_since",)]


def render_history(
    page: HistoryPage,
    entries: list[StoredResource],
    kept: list[tuple[str, str]],
    res_type: str | None,
    res_id: str | None,
    base: str,
) -> Response:
    """The history Bundle of ``entries`` (the page's entries the caller may see). ``total`` is given only when
    nothing on the page was left out, as for a search; the links page through the whole history."""
    path = "/".join(p for p in (res_type, res_id, "_history") if p)
    links = [_link("self", _page_url(base, path, kept, page.offset, page.count))]
    if page.offset + page.count < page.total:
        links.append(_link("next", _page_url(base, path, kept, page.offset + page.count, page.count)))
    if page.offset > 0:
        links.append(_link("previous", _page_url(base, path, kept, max(0, page.offset - page.count), page.count)))
    head_doc: dict[str, object] = {"resourceType": "Bundle", "type": "history"}
    if len(entries) == len(page.entries):
        head_doc["total"] = page.total
    head_doc["link"] = links
    head = orjson.dumps(head_doc)
    rendered = [_history_entry(e, base) for e in entries]
    body = head[:-1] + b',"entry":[' + b",".join(rendered) + b"]}" if rendered else head
    return Response(body, media_type=FHIR_JSON)
