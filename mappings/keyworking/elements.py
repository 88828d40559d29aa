"""Small builders and readers for the FHIR elements the keyworking mappings share (plain dicts, no models).

Writers never fail (records are already valid). Readers raise :class:`NotOurShape` with the element's path when
a resource lacks what our profiles promise, so a read of something another system wrote fails precisely.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Any, TypeVar

from mappings.keyworking import urls
from mappings.keyworking.errors import NotOurShape
from mappings.keyworking.records import Agency, PersonRef
from mappings.keyworking.terminology import ENUM_SYSTEMS, display, snomed_equivalent

Resource = dict[str, Any]
E = TypeVar("E", bound=StrEnum)


def require_id(record_id: str | None, kind: str) -> str:
    """The record's id; mapping a record without one is a programming error (the API assigns ids first)."""
    if record_id is None:
        raise ValueError(f"a {kind} needs an id before it is mapped to FHIR")
    return record_id


def meta(profile: str, *, security: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"profile": [profile]}
    if security:
        out["security"] = list(security)
    return out


RESTRICTED = {"system": urls.V3_CONFIDENTIALITY, "code": "R", "display": "restricted"}


# -- codes ----------------------------------------------------------------------------------------------------------


def coding(code: StrEnum) -> dict[str, str]:
    return {"system": urls.code_system(ENUM_SYSTEMS[type(code)]), "code": code.value, "display": display(code)}


def codeable(code: StrEnum) -> dict[str, Any]:
    """Our local coding, plus the verified SNOMED CT equivalent where there is one (read back: the local one)."""
    codings = [coding(code)]
    snomed = snomed_equivalent(code)
    if snomed is not None:
        codings.append({"system": urls.SNOMED, "code": snomed[0], "display": snomed[1]})
    return {"coding": codings}


def find_code(value: Any, enum: type[E]) -> E | None:
    """The member of ``enum`` a CodeableConcept or Coding carries in our system, or None when it has none."""
    if not isinstance(value, dict):
        return None
    system = urls.code_system(ENUM_SYSTEMS[enum])
    for c in value.get("coding", [value]):
        if isinstance(c, dict) and c.get("system") == system:
            try:
                return enum(str(c.get("code")))
            except ValueError:
                return None
    return None


def read_code(value: Any, enum: type[E], path: str) -> E:
    found = find_code(value, enum)
    if found is None:
        raise NotOurShape(path, f"has no code from {urls.code_system(ENUM_SYSTEMS[enum])}")
    return found


def has_code(value: Any, code: StrEnum) -> bool:
    return find_code(value, type(code)) is code


# -- references -----------------------------------------------------------------------------------------------------


def ref(resource_type: str, resource_id: str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{resource_id}"}


def read_ref_id(value: Any, resource_type: str, path: str) -> str:
    """The id in a literal reference ``<resource_type>/<id>``."""
    reference = value.get("reference") if isinstance(value, dict) else None
    prefix = resource_type + "/"
    if not isinstance(reference, str) or not reference.startswith(prefix):
        raise NotOurShape(path, f"is not a reference to a {resource_type}")
    return reference[len(prefix) :]


def person_ref(person: PersonRef) -> dict[str, str]:
    out = {"reference": person.reference} if person.reference else {}
    out["display"] = person.name
    return out


def read_person(value: Any, path: str) -> dict[str, Any]:
    """A PersonRef (as a dict for the record's validation) from a Reference with a display name."""
    if not isinstance(value, dict) or not isinstance(value.get("display"), str):
        raise NotOurShape(path, "is not a reference with a display name")
    out: dict[str, Any] = {"name": value["display"]}
    if "reference" in value:
        out["reference"] = value["reference"]
    return out


def agency_ref(agency: Agency) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "Organization",
        "identifier": {"system": urls.ODS_ORGANISATION, "value": agency.ods_code},
    }
    if agency.name is not None:
        out["display"] = agency.name
    return out


def read_agency(value: Any, path: str) -> dict[str, Any]:
    identifier = value.get("identifier") if isinstance(value, dict) else None
    if not isinstance(identifier, dict) or identifier.get("system") != urls.ODS_ORGANISATION:
        raise NotOurShape(path, "is not a reference to an organisation by ODS code")
    out: dict[str, Any] = {"ods_code": identifier.get("value")}
    if isinstance(value, dict) and "display" in value:
        out["name"] = value["display"]
    return out


# -- extensions -----------------------------------------------------------------------------------------------------


def ext(url: str, value_key: str, value: Any) -> dict[str, Any]:
    return {"url": url, value_key: value}


def find_ext(element: Any, url: str) -> dict[str, Any] | None:
    extensions = element.get("extension") if isinstance(element, dict) else None
    if not isinstance(extensions, list):
        return None
    for e in extensions:
        if isinstance(e, dict) and e.get("url") == url:
            return e
    return None


def ext_value(element: Any, url: str, value_key: str) -> Any:
    found = find_ext(element, url)
    return None if found is None else found.get(value_key)


# -- dates, times and narrative -------------------------------------------------------------------------------------


def fhir_datetime(value: datetime) -> str:
    return value.isoformat()


def fhir_date(value: date) -> str:
    return value.isoformat()


def datetime_period(start: datetime, end: datetime | None) -> dict[str, str]:
    out = {"start": fhir_datetime(start)}
    if end is not None:
        out["end"] = fhir_datetime(end)
    return out


_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def read_date(value: Any, path: str) -> date:
    """A full date (``YYYY-MM-DD``); a partial date or a dateTime is not ours."""
    if not isinstance(value, str) or not _DATE.match(value):
        raise NotOurShape(path, "is not a full date (YYYY-MM-DD)")
    return date.fromisoformat(value)


def read_datetime(value: Any, path: str) -> datetime:
    """A dateTime with a time and a zone."""
    if not isinstance(value, str) or "T" not in value:
        raise NotOurShape(path, "is not a dateTime with a time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise NotOurShape(path, "is not a dateTime") from None
    if parsed.tzinfo is None:
        raise NotOurShape(path, "has no time zone")
    return parsed


_XHTML_OPEN = '<div xmlns="http://www.w3.org/1999/xhtml"><p>'
_XHTML_CLOSE = "</p></div>"


def narrative(text: str) -> dict[str, str]:
    """Text as FHIR narrative: one escaped paragraph (read back exactly by :func:`read_narrative`)."""
    return {"status": "generated", "div": _XHTML_OPEN + html.escape(text, quote=False) + _XHTML_CLOSE}


def read_narrative(value: Any, path: str) -> str:
    div = value.get("div") if isinstance(value, dict) else None
    if not isinstance(div, str) or not div.startswith(_XHTML_OPEN) or not div.endswith(_XHTML_CLOSE):
        raise NotOurShape(path, "is not a single-paragraph narrative")
    return html.unescape(div[len(_XHTML_OPEN) : -len(_XHTML_CLOSE)])


# -- picking resources ----------------------------------------------------------------------------------------------


def of_type(resources: Iterable[Resource], resource_type: str) -> list[Resource]:
    return [r for r in resources if r.get("resourceType") == resource_type]


def the_one(resources: Iterable[Resource], resource_type: str) -> Resource:
    found = of_type(resources, resource_type)
    if len(found) != 1:
        raise NotOurShape(resource_type, f"expected exactly one {resource_type}, got {len(found)}")
    return found[0]


def transaction(resources: Iterable[Resource]) -> Resource:
    """A transaction Bundle that PUTs every resource at its id (ids are derived, so a rewrite is an update)."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources
        ],
    }
