"""Reading FHIR values as the words a person would write on a summary (pure; no I/O)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

Resource = dict[str, Any]


def concept(value: Any) -> str:
    """A CodeableConcept or Coding as its first display (or text, or code)."""
    if not isinstance(value, dict):
        return ""
    if isinstance(value.get("text"), str):
        return str(value["text"])
    codings = value.get("coding", [value])
    for coding in codings if isinstance(codings, list) else ():
        if isinstance(coding, dict) and (coding.get("display") or coding.get("code")):
            return str(coding.get("display") or coding.get("code"))
    return ""


def first_concept(values: Any) -> str:
    return concept(values[0]) if isinstance(values, list) and values else ""


def code_in(value: Any, system: str) -> str | None:
    """The code of the first coding from ``system`` in a CodeableConcept (or a list of them)."""
    concepts = value if isinstance(value, list) else [value]
    for item in concepts:
        codings = item.get("coding", [item]) if isinstance(item, dict) else ()
        for coding in codings:
            if isinstance(coding, dict) and coding.get("system") == system and isinstance(coding.get("code"), str):
                return str(coding["code"])
    return None


def reference_name(value: Any) -> str:
    """Who a Reference names: its display, else its identifier value, else the reference itself."""
    if not isinstance(value, dict):
        return ""
    if isinstance(value.get("display"), str):
        return str(value["display"])
    identifier = value.get("identifier")
    if isinstance(identifier, dict) and identifier.get("value"):
        return str(identifier["value"])
    return str(value.get("reference", ""))


def ods_code(value: Any) -> str | None:
    identifier = value.get("identifier") if isinstance(value, dict) else None
    if isinstance(identifier, dict) and isinstance(identifier.get("value"), str):
        return str(identifier["value"])
    return None


def agency(value: Any) -> str:
    """An organisation Reference as ``Name (ODS code)``."""
    name, code = reference_name(value), ods_code(value)
    if code and name and name != code:
        return f"{name} ({code})"
    return name


def extension(resource: Any, url: str) -> Resource | None:
    for found in resource.get("extension", ()) if isinstance(resource, dict) else ():
        if isinstance(found, dict) and found.get("url") == url:
            return found
    return None


def extension_value(resource: Any, url: str, key: str) -> Any:
    found = extension(resource, url)
    return None if found is None else found.get(key)


def when(value: Any) -> str:
    """A FHIR date or dateTime as ``27 Oct 2026`` (a partial date as written)."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        if len(value) == 10:
            return date.fromisoformat(value).strftime("%d %b %Y").lstrip("0")
        return datetime.fromisoformat(value).strftime("%d %b %Y").lstrip("0")
    except ValueError:
        return value


def sort_key(value: Any) -> str:
    """A FHIR date/dateTime as a string that sorts in time order (ISO text does, to the day)."""
    return value if isinstance(value, str) else ""


def period_text(period: Any) -> str:
    if not isinstance(period, dict):
        return ""
    start, end = when(period.get("start")), when(period.get("end"))
    if start and end:
        return start if start == end else f"{start} to {end}"
    return f"from {start}" if start else (f"until {end}" if end else "")


def human_name(patient: Resource) -> str:
    for name in patient.get("name", ()):
        if isinstance(name, dict):
            if isinstance(name.get("text"), str):
                return str(name["text"])
            given = " ".join(str(g) for g in name.get("given", ()))
            return " ".join(part for part in (given, str(name.get("family", ""))) if part)
    return ""


def identifier_value(resource: Resource, system: str) -> str | None:
    for identifier in resource.get("identifier", ()):
        if isinstance(identifier, dict) and identifier.get("system") == system and identifier.get("value"):
            return str(identifier["value"])
    return None


def nhs_number_text(value: str) -> str:
    """An NHS number as people write it: ``999 000 0018``."""
    return f"{value[:3]} {value[3:6]} {value[6:]}" if len(value) == 10 and value.isdigit() else value
