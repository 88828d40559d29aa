"""Check a ``batch``/``transaction`` Bundle and turn each entry into a typed :class:`EntryRequest`.

Nothing here touches the store. A Bundle-level problem (not a Bundle, wrong ``type``, ``entry`` not a list)
raises :class:`InvalidBundle` at once. A problem with one entry becomes that entry's error, its issues naming
``Bundle.entry[i]...``: a batch answers it in that entry's response, a transaction refuses the whole Bundle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl

from gateway.errors import (
    GatewayError,
    InvalidBundle,
    InvalidRequest,
    InvalidResource,
    Issue,
    MethodNotAllowed,
    UnsupportedResourceType,
)
from gateway.store.records import StoredResource
from gateway.store.repository import ID_PATTERN
from mappings.fhir import is_supported_type

BUNDLE_TYPES = ("batch", "transaction")
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")
CONTROL_PARAMS = frozenset({"_format", "_pretty"})

#: FHIR R4 http.html#trules: a transaction is processed as if DELETEs came first, then POSTs, PUTs, GETs.
PROCESSING_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


class Interaction(StrEnum):
    READ = "read"
    VREAD = "vread"
    SEARCH = "search-type"
    CREATE = "create"
    UPDATE = "update"
    CONDITIONAL_UPDATE = "conditional-update"
    DELETE = "delete"
    CONDITIONAL_DELETE = "conditional-delete"


@dataclass(slots=True)
class EntryRequest:
    """One entry's request, checked: what to do, to which type/id, with which criteria and body."""

    index: int
    method: str
    interaction: Interaction
    res_type: str
    res_id: str | None = None
    version_id: int | None = None
    params: list[tuple[str, str]] = field(default_factory=list)  # search parameters or conditional criteria
    resource: dict[str, Any] | None = None
    full_url: str | None = None
    if_match: int | None = None
    if_none_exist: list[tuple[str, str]] | None = None
    # Decided by a transaction before anything is written (see gateway.bundles.processor):
    assigned_id: str | None = None  # the id a create will be stored under
    existing: StoredResource | None = None  # what a conditional create matched (nothing is then written)
    authorised: bool = False  # the caller's write check was made (a transaction checks every entry first)

    @property
    def path(self) -> str:
        return f"Bundle.entry[{self.index}]"

    @property
    def is_write(self) -> bool:
        return self.method in ("POST", "PUT", "DELETE")


@dataclass(slots=True)
class ParsedBundle:
    kind: str  # "batch" or "transaction"
    entries: list[EntryRequest | GatewayError]  # in request order


def entry_error(cls: type[GatewayError], index: int, element: str, message: str) -> GatewayError:
    """An error about one element of entry ``index`` (``element`` relative to the entry, e.g. ``request.url``)."""
    path = f"Bundle.entry[{index}]" + (f".{element}" if element else "")
    return cls(f"{path}: {message}", issues=[Issue(cls.code, message, (path,))])


def parse_bundle(body: Any, base: str) -> ParsedBundle:
    """The Bundle's entries as requests (or per-entry errors). Raises :class:`InvalidBundle` for the Bundle."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        found = body.get("resourceType") if isinstance(body, dict) else type(body).__name__
        raise InvalidBundle(
            "POST /fhir takes a batch or transaction Bundle",
            issues=[Issue("invalid", f"expected a Bundle, got {found!r}", ("Bundle.resourceType",))],
        )
    kind = body.get("type")
    if kind not in BUNDLE_TYPES:
        raise InvalidBundle(
            f"Bundle.type {kind!r} cannot be processed",
            issues=[Issue("invalid", f"Bundle.type must be batch or transaction, got {kind!r}", ("Bundle.type",))],
        )
    raw_entries = body.get("entry", [])
    if not isinstance(raw_entries, list):
        raise InvalidBundle(
            "Bundle.entry is not a list", issues=[Issue("structure", "Bundle.entry must be a list", ("Bundle.entry",))]
        )
    entries = [_parse_entry(i, raw, base) for i, raw in enumerate(raw_entries)]
    return ParsedBundle(kind, entries)


def _parse_entry(index: int, raw: Any, base: str) -> EntryRequest | GatewayError:
    try:
        return _checked_entry(index, raw, base)
    except GatewayError as exc:
        return exc


def _checked_entry(index: int, raw: Any, base: str) -> EntryRequest:
    if not isinstance(raw, dict):
        raise entry_error(InvalidBundle, index, "", "an entry must be an object")
    request = raw.get("request")
    if not isinstance(request, dict):
        raise entry_error(InvalidBundle, index, "request", "entry.request is required")
    method = request.get("method")
    if not isinstance(method, str) or method not in METHODS:
        raise entry_error(InvalidBundle, index, "request.method", f"request.method {method!r} is not an HTTP verb")
    if method == "PATCH":
        raise entry_error(MethodNotAllowed, index, "request.method", "PATCH is not supported; send the resource by PUT")
    url = request.get("url")
    if not isinstance(url, str) or not url.strip():
        raise entry_error(InvalidBundle, index, "request.url", "request.url is required")
    full_url = raw.get("fullUrl")
    if full_url is not None and not isinstance(full_url, str):
        raise entry_error(InvalidBundle, index, "fullUrl", "fullUrl must be a string")
    segments, params = _split_url(index, url.strip(), base)
    res_type = segments[0]
    if not is_supported_type(res_type):
        raise entry_error(UnsupportedResourceType, index, "request.url", f"resource type {res_type!r} is not served")
    entry = EntryRequest(index, method, Interaction.READ, res_type, params=params, full_url=full_url)
    if method in ("GET", "HEAD"):
        _read_target(entry, segments)
    else:
        _write_target(entry, segments)
    if method in ("POST", "PUT"):
        entry.resource = _resource(index, raw.get("resource"), res_type)
        if method == "POST":
            entry.resource.pop("id", None)  # the server assigns ids on create
            entry.if_none_exist = _criteria(index, request.get("ifNoneExist"), "request.ifNoneExist")
    if method in ("PUT", "DELETE"):
        entry.if_match = _version_etag(index, request.get("ifMatch"))
    return entry


def _split_url(index: int, url: str, base: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Path segments (``Type``, ``Type/id``, ...) and query parameters of a relative or same-server URL."""
    if url.startswith(base + "/") or url.startswith(base + "?"):
        url = url[len(base) :]
    path, _, query = url.partition("?")
    if "://" in path:
        raise entry_error(InvalidBundle, index, "request.url", f"{url!r} is not on this server ({base})")
    segments = path.strip("/").split("/")
    if not segments or not segments[0]:
        raise entry_error(InvalidBundle, index, "request.url", f"{url!r} names no resource type")
    params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in CONTROL_PARAMS]
    return segments, params


def _read_target(entry: EntryRequest, segments: list[str]) -> None:
    if len(segments) == 1:
        entry.interaction = Interaction.SEARCH
        return
    entry.res_id = _logical_id(entry.index, segments[1])
    if len(segments) == 2:
        entry.interaction = Interaction.READ
    elif len(segments) == 4 and segments[2] == "_history" and segments[3].isdigit():
        entry.interaction = Interaction.VREAD
        entry.version_id = int(segments[3])
    else:
        raise entry_error(
            InvalidBundle, entry.index, "request.url", "GET entries read (Type/id), vread or search (Type?...)"
        )


def _write_target(entry: EntryRequest, segments: list[str]) -> None:
    conditional = len(segments) == 1
    if entry.method == "POST":
        if not conditional or entry.params:
            raise entry_error(InvalidBundle, entry.index, "request.url", "a create is POSTed to the type, e.g. Patient")
        entry.interaction = Interaction.CREATE
        return
    if conditional:
        if not entry.params:
            raise entry_error(
                InvalidBundle,
                entry.index,
                "request.url",
                f"{entry.method} to a type needs search criteria (Type?identifier=...) or an id (Type/id)",
            )
        entry.interaction = Interaction.CONDITIONAL_UPDATE if entry.method == "PUT" else Interaction.CONDITIONAL_DELETE
        return
    if len(segments) != 2:
        raise entry_error(InvalidBundle, entry.index, "request.url", f"{entry.method} takes Type/id or Type?criteria")
    entry.res_id = _logical_id(entry.index, segments[1])
    entry.interaction = Interaction.UPDATE if entry.method == "PUT" else Interaction.DELETE


def _logical_id(index: int, text: str) -> str:
    if not ID_PATTERN.match(text):
        raise entry_error(InvalidBundle, index, "request.url", f"{text!r} is not a valid resource id")
    return text


def _resource(index: int, resource: Any, res_type: str) -> dict[str, Any]:
    if not isinstance(resource, dict):
        raise entry_error(InvalidResource, index, "resource", "POST and PUT entries need a resource")
    declared = resource.get("resourceType")
    if declared != res_type:
        raise entry_error(
            InvalidResource, index, "resource.resourceType", f"resourceType {declared!r} does not match {res_type!r}"
        )
    return resource


def _criteria(index: int, value: Any, element: str) -> list[tuple[str, str]] | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise entry_error(InvalidBundle, index, element, f"{element} must be search criteria, e.g. identifier=...")
    text = value.split("?", 1)[1] if "?" in value else value
    criteria = [(k, v) for k, v in parse_qsl(text, keep_blank_values=True) if k not in CONTROL_PARAMS]
    if not criteria:
        raise entry_error(InvalidBundle, index, element, f"{element} {value!r} holds no search criteria")
    return criteria


def _version_etag(index: int, value: Any) -> int | None:
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else ""
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit():
        raise entry_error(InvalidRequest, index, "request.ifMatch", f'ifMatch {value!r} is not a version ETag W/"n"')
    return int(text)
