"""Search values extracted from a resource at write time, one row per value, for the ``sp_*`` tables.

Placeholder extraction: ``identifier`` tokens only. The full search-parameter registry replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class IndexRows:
    tokens: list[tuple[str, str | None, str | None]] = field(default_factory=list)  # param, system, code
    strings: list[tuple[str, str, str]] = field(default_factory=list)  # param, norm, exact
    references: list[tuple[str, str | None, str | None, str | None]] = field(
        default_factory=list
    )  # param, target_type, target_id, target_url
    dates: list[tuple[str, int, int]] = field(default_factory=list)  # param, low_us, high_us


def extract(resource: dict[str, Any]) -> IndexRows:
    rows = IndexRows()
    for ident in resource.get("identifier", []) or []:
        if isinstance(ident, dict):
            rows.tokens.append(("identifier", ident.get("system"), ident.get("value")))
    return rows


def patient_id_of(resource: dict[str, Any]) -> str | None:
    """The logical id of the Patient a resource is about (for per-patient ordering), if local."""
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) else None
    for key in ("patient", "subject", "beneficiary"):
        ref = resource.get(key)
        if isinstance(ref, dict):
            value = ref.get("reference")
            if isinstance(value, str) and value.startswith("Patient/"):
                return value.split("/", 2)[1]
    return None
