"""Search values extracted from a resource at write time, one row per value, for the ``sp_*`` tables.

Driven by :mod:`gateway.store.searchparams`: each parameter's paths are walked through the resource's JSON and
each value found becomes index rows of the parameter's type. An extension step selects the extensions with its
URL and yields their ``value[x]`` (``valueCoding``, ``valueReference``, ...). The shapes understood:

- token: ``code``/``id``/``uri``/``string`` primitives, booleans, Coding, CodeableConcept (each coding),
  Identifier (system + value), ContactPoint (value). Reference identifiers are indexed as ``<param>:identifier``.
- string: primitives, HumanName (family, given, prefix, suffix, text) and Address (every part), stored both
  normalised (case-folded, accents removed: default and ``:contains`` matching) and as written (``:exact``).
- reference: ``Type/id`` (and ``Type/id/_history/n``), absolute URLs ending in ``Type/id`` (kept in
  ``target_url`` too), other URLs and URNs kept in ``target_url`` only. Contained (``#``) references are skipped.
- date: date, dateTime, instant (a range by precision) and Period (open ends run to the ends of time).

Pure functions: no I/O. Values longer than the index columns are cut to fit (search values are cut the same way).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from gateway.store.dates import date_range
from gateway.store.searchparams import DATE, REFERENCE, STRING, TOKEN, URI, SearchParameter, Step, registry

MAX_TOKEN = 255
MAX_NORM = 255
MIN_TIME = -(2**62)
MAX_TIME = 2**62

_REFERENCE_RE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$")
_HUMAN_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
_ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")


@dataclass(slots=True)
class IndexRows:
    tokens: list[tuple[str, str | None, str | None]] = field(default_factory=list)  # param, system, code
    strings: list[tuple[str, str, str]] = field(default_factory=list)  # param, norm, exact
    references: list[tuple[str, str | None, str | None, str | None]] = field(
        default_factory=list
    )  # param, target_type, target_id, target_url
    dates: list[tuple[str, int, int]] = field(default_factory=list)  # param, low_us, high_us


def normalise(text: str) -> str:
    """Case-folded, accents removed, whitespace collapsed: how string parameters compare by default."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().split())[:MAX_NORM]


def parse_reference(value: str) -> tuple[str | None, str | None, str | None]:
    """(target type, target id, url as written when absolute or not a plain ``Type/id``)."""
    if value.startswith("#"):
        return None, None, None
    m = _REFERENCE_RE.search(value)
    relative = m is not None and m.start() == 0
    if m is None:
        return None, None, value
    return m.group(1), m.group(2), (None if relative else value)


def extension_value(extension: Any) -> Any:
    """The ``value[x]`` of an extension (whichever type it has), or None."""
    if not isinstance(extension, dict):
        return None
    for key, value in extension.items():
        if key.startswith("value") and key[5:6].isupper():
            return value
    return None


def _step(item: dict[str, Any], step: Step) -> Any:
    if isinstance(step, str):
        return item.get(step)
    extensions = item.get("extension")
    if not isinstance(extensions, list):
        return None
    return [extension_value(e) for e in extensions if isinstance(e, dict) and e.get("url") == step.url]


def _walk(node: Any, path: tuple[Step, ...]) -> list[Any]:
    """Every value at ``path`` below ``node``, arrays flattened at each step."""
    current = [node]
    for step in path:
        found: list[Any] = []
        for item in current:
            if not isinstance(item, dict):
                continue
            value = _step(item, step)
            if value is None:
                continue
            if isinstance(value, list):
                found.extend(v for v in value if v is not None)
            else:
                found.append(value)
        if not found:
            return []
        current = found
    return current


def _cut(value: Any) -> str | None:
    return value[:MAX_TOKEN] if isinstance(value, str) else None


def _tokens(name: str, value: Any, out: list[tuple[str, str | None, str | None]]) -> None:
    if isinstance(value, bool):
        out.append((name, None, "true" if value else "false"))
    elif isinstance(value, str | int):
        out.append((name, None, str(value)[:MAX_TOKEN]))
    elif isinstance(value, dict):
        if "coding" in value or ("text" in value and "system" not in value and "value" not in value):
            for coding in value.get("coding") or []:
                if isinstance(coding, dict) and ("code" in coding or "system" in coding):
                    out.append((name, _cut(coding.get("system")), _cut(coding.get("code"))))
        elif "code" in value:  # Coding
            out.append((name, _cut(value.get("system")), _cut(value.get("code"))))
        elif "value" in value:  # Identifier or ContactPoint
            out.append((name, _cut(value.get("system")), _cut(value.get("value"))))


def _strings(name: str, value: Any, out: list[tuple[str, str, str]]) -> None:
    if isinstance(value, str):
        if value.strip():
            out.append((name, normalise(value), value))
        return
    if isinstance(value, dict):
        parts = _HUMAN_NAME_PARTS if ("family" in value or "given" in value) else _ADDRESS_PARTS
        for part in parts:
            piece = value.get(part)
            for text in piece if isinstance(piece, list) else [piece]:
                if isinstance(text, str) and text.strip():
                    out.append((name, normalise(text), text))


def _range(text: Any, *, low: bool) -> int | None:
    if not isinstance(text, str):
        return None
    try:
        first, last = date_range(text)
    except ValueError:
        return None
    return first if low else last


def _dates(name: str, value: Any, out: list[tuple[str, int, int]]) -> None:
    if isinstance(value, str):
        try:
            first, last = date_range(value)
        except ValueError:
            return
        out.append((name, first, last))
    elif isinstance(value, dict) and ("start" in value or "end" in value):
        start = _range(value.get("start"), low=True)
        end = _range(value.get("end"), low=False)
        if start is not None or end is not None:
            out.append((name, MIN_TIME if start is None else start, MAX_TIME if end is None else end))


def _references(param: SearchParameter, value: Any, rows: IndexRows) -> None:
    if not isinstance(value, dict):
        return
    ref = value.get("reference")
    if isinstance(ref, str):
        target_type, target_id, url = parse_reference(ref)
        if target_type is None and url is None:
            return
        if param.targets and target_type is not None and target_type not in param.targets:
            return
        rows.references.append((param.name, target_type, target_id, url))
    ident = value.get("identifier")
    if isinstance(ident, dict) and (not param.targets or _type_allowed(param, value)):
        rows.tokens.append((f"{param.name}:identifier", _cut(ident.get("system")), _cut(ident.get("value"))))


def _type_allowed(param: SearchParameter, reference: dict[str, Any]) -> bool:
    declared = reference.get("type")
    return not isinstance(declared, str) or declared in param.targets


def extract(resource: dict[str, Any]) -> IndexRows:
    """The index rows of every registered search parameter for one resource."""
    rows = IndexRows()
    res_type = resource.get("resourceType")
    if not isinstance(res_type, str):
        return rows
    for param in registry(res_type).indexed:
        for path in param.paths:
            for value in _walk(resource, path):
                if param.type == TOKEN or param.type == URI:
                    _tokens(param.name, value, rows.tokens)
                elif param.type == STRING:
                    _strings(param.name, value, rows.strings)
                elif param.type == DATE:
                    _dates(param.name, value, rows.dates)
                elif param.type == REFERENCE:
                    _references(param, value, rows)
    return rows


def patient_id_of(resource: dict[str, Any]) -> str | None:
    """The logical id of the Patient a resource is about (for per-patient ordering), if local."""
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) else None
    for key in ("patient", "subject", "beneficiary", "for"):
        ref = resource.get(key)
        if isinstance(ref, dict):
            value = ref.get("reference")
            if isinstance(value, str) and value.startswith("Patient/"):
                return value.split("/", 2)[1]
    return None
