"""What an export covers (pure): the kind of kick-off, the types it may hold, and the compartment parameter that
ties a resource to a Patient."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.store.searchparams import parameter
from mappings.fhir import SUPPORTED_TYPES


class Kind(StrEnum):
    SYSTEM = "system"  # every resource of the types asked for
    PATIENT = "patient"  # every Patient and the resources in their compartments
    GROUP = "group"  # a Group's member Patients and the resources in their compartments


def compartment_parameter(res_type: str) -> str | None:
    """The search parameter that puts a resource in a Patient's compartment, if the type has one."""
    for name in ("patient", "subject"):
        found = parameter(res_type, name)
        if found is not None and (not found.targets or "Patient" in found.targets):
            return name
    return None


def exportable_types(kind: Kind) -> frozenset[str]:
    """The types a kick-off of this kind may ask for (patient-level: Patient and the compartment types, without
    the audit trail, which only a system-level export with ``_type=AuditEvent`` gives)."""
    if kind is Kind.SYSTEM:
        return frozenset(SUPPORTED_TYPES)
    return frozenset(
        t for t in SUPPORTED_TYPES if t != "AuditEvent" and (t == "Patient" or compartment_parameter(t) is not None)
    )


@dataclass(frozen=True, slots=True)
class Selection:
    """Which rows of one type an export reads: all of them, or those about ``patients`` (None: any Patient); last
    updated after ``since`` and no later than ``until`` (the job's transactionTime) when given."""

    res_type: str
    kind: Kind
    patients: tuple[str, ...] | None = None
    since: int | None = None
    until: int | None = None
