"""The one place that imports fhir.resources: pins the FHIR version the gateway speaks.

NHS England exchanges FHIR R4 (4.0.1). fhir.resources 8 ships R5 by default and R4B under
``fhir.resources.R4B``; for the resource types the gateway serves, R4B and R4 are wire-compatible, so the
R4B models validate our R4 JSON. Nothing else in the project imports fhir.resources.

Validation is for writes only: reads serve stored JSON bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
import pydantic
from fhir.resources.R4B import get_fhir_model_class

FHIR_VERSION = "4.0.1"

#: Resource types the store serves, in the order the CapabilityStatement lists them.
SUPPORTED_TYPES: tuple[str, ...] = (
    "Patient",
    "RelatedPerson",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "HealthcareService",
    "CareTeam",
    "EpisodeOfCare",
    "Encounter",
    "Flag",
    "Observation",
    "Condition",
    "Task",
    "Consent",
    "ServiceRequest",
    "CarePlan",
    "Composition",
    "DocumentReference",
    "Provenance",
    "AuditEvent",
    "Subscription",
    "Group",
)


@dataclass(frozen=True, slots=True)
class ValidationProblem:
    """One problem found in a resource: the FHIRPath-style element path and what is wrong."""

    path: str
    message: str
    code: str = "structure"


@cache
def _model(resource_type: str) -> Any:
    return get_fhir_model_class(resource_type)


def element_path(resource_type: str, loc: tuple[int | str, ...]) -> str:
    """Turn a pydantic error location into a FHIRPath-style path, e.g. ``Patient.name[0].given``."""
    out = resource_type
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part.startswith("constrained-"):
            continue
        else:
            out += f".{part}"
    return out


def _problem_code(error_type: str) -> str:
    if error_type == "missing":
        return "required"
    if error_type == "extra_forbidden":
        return "structure"
    return "value"


def _nul_path(value: Any, path: str) -> str | None:
    """The path of the first string holding U+0000 (FHIR strings cannot: XML has no such character)."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in str(key):
                return path
            found = _nul_path(item, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def validate_structure(resource: dict[str, Any]) -> list[ValidationProblem]:
    """Check a resource against the FHIR R4 structure (types, cardinality, primitive formats, unknown elements).

    Returns an empty list when the resource is valid. Never raises for bad content.
    """
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return [ValidationProblem("resourceType", "resourceType is missing or not a string", "required")]
    if resource_type not in SUPPORTED_TYPES:
        return [ValidationProblem("resourceType", f"resource type {resource_type!r} is not served", "not-supported")]
    nul = _nul_path(resource, resource_type) if b"\\u0000" in orjson.dumps(resource) else None
    if nul is not None:
        return [ValidationProblem(nul, "a NUL character (U+0000) is not allowed in a FHIR value", "value")]
    try:
        _model(resource_type).model_validate(resource)
    except pydantic.ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p == resource_type))
            msg = str(err["msg"])
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
            problems.append(ValidationProblem(element_path(resource_type, loc), msg, _problem_code(err["type"])))
        return problems
    return []


def is_supported_type(resource_type: str) -> bool:
    return resource_type in SUPPORTED_TYPES


@cache
def summary_elements(resource_type: str) -> frozenset[str]:
    """The top-level elements of a type marked ``isSummary`` in FHIR R4 (what ``_summary=true`` keeps)."""
    if resource_type not in SUPPORTED_TYPES:
        return frozenset()
    names = set()
    for name, info in _model(resource_type).model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get("summary_element_property"):
            names.add(info.alias or name)
    return frozenset(names | {"resourceType", "id", "meta"})
