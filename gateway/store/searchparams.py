"""The search parameters the store indexes, per resource type (placeholder: identifier only).

The full registry replaces this module; :func:`parameters_for` is what the CapabilityStatement reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from mappings.fhir import SUPPORTED_TYPES


@dataclass(frozen=True, slots=True)
class SearchParameter:
    name: str
    type: str  # token | string | reference | date | uri | number | quantity | special
    documentation: str = ""


COMMON = (
    SearchParameter("_id", "token", "Logical id of the resource"),
    SearchParameter("_lastUpdated", "date", "When the resource version last changed"),
)


def parameters_for(res_type: str) -> tuple[SearchParameter, ...]:
    if res_type not in SUPPORTED_TYPES:
        return ()
    return COMMON + (SearchParameter("identifier", "token", "A business identifier"),)
