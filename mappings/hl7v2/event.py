"""What an ADT message says, as typed frozen records (no FHIR here: :mod:`mappings.hl7v2.adt_fhir` maps them).

Values are decoded (escapes resolved) and trimmed; codes the gateway matches on are upper-cased. Times are aware
UTC datetimes (see :mod:`mappings.hl7v2.dtm` for the London rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: Events about a hospital visit: each changes (or creates) an Encounter.
VISIT_EVENTS = frozenset({"A01", "A02", "A03", "A04", "A05", "A08", "A11", "A12", "A13"})
#: Events whose PID the gateway lays over its Patient (A28/A31 person add/update, A40 merge, and every visit event).
PERSON_EVENTS = VISIT_EVENTS | {"A28", "A31", "A40"}


@dataclass(frozen=True, slots=True)
class PatientIdentifier:
    """One CX repetition: the value, who issued it (CX.4, e.g. ``NHS`` or a trust's ODS code) and its type (CX.5)."""

    value: str
    assigning_authority: str
    type_code: str


@dataclass(frozen=True, slots=True)
class PersonName:
    """One XPN repetition. ``use_code`` is XPN.7 (``L`` legal, ``D`` display, ``M`` maiden...)."""

    family: str
    given: tuple[str, ...]
    prefix: str
    suffix: str
    use_code: str


@dataclass(frozen=True, slots=True)
class Location:
    """A PL: point of care (ward) ^ room ^ bed ^ facility, and the sender's description (PL.9) when given."""

    point_of_care: str
    room: str
    bed: str
    facility: str
    description: str = ""

    @property
    def display(self) -> str:
        where = " / ".join(part for part in (self.facility, self.point_of_care, self.room, self.bed) if part)
        if self.description and where:
            return f"{self.description} ({where})"
        return self.description or where


@dataclass(frozen=True, slots=True)
class PatientFacts:
    """PID and PD1: who the message is about."""

    nhs_number: str | None  # PID-3 with CX.4 NHS and CX.5 NH/HN (spaces removed, check digit verified)
    nhs_number_verification: str | None  # PID-32 NSTS01-08 as the UK Core code 01-08
    local_identifiers: tuple[PatientIdentifier, ...]  # the other PID-3 repetitions
    names: tuple[PersonName, ...]  # PID-5
    birth_date: str | None  # PID-7 as a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)
    sex: str  # PID-8 (HL7 table 0001: M F O U A N), upper-cased; empty when not sent
    postcode: str | None  # PID-11 XAD.5 of the home (or first) address
    gp_practice: str | None  # PD1-3 ODS code of the registered GP practice


@dataclass(frozen=True, slots=True)
class VisitFacts:
    """PV1: the hospital visit."""

    patient_class: str  # PV1-2 (HL7 table 0004: I inpatient, O outpatient, E emergency, P pre-admit...)
    location: Location | None  # PV1-3 (for A12: the location the patient goes back to)
    prior_location: Location | None  # PV1-6 (for A02: where the patient was transferred from)
    hospital_service: str  # PV1-10 (the sender's code, table 0069 is user-defined)
    visit_number: str  # PV1-19 CX.1
    admitted_at: datetime | None  # PV1-44
    discharged_at: datetime | None  # PV1-45


@dataclass(frozen=True, slots=True)
class MergeFacts:
    """MRG (A40): the identifiers of the record being merged into the one in PID."""

    prior_identifiers: tuple[PatientIdentifier, ...]  # MRG-1 repetitions

    @property
    def prior_nhs_numbers(self) -> tuple[str, ...]:
        return tuple(i.value for i in self.prior_identifiers if i.assigning_authority == "NHS")


@dataclass(frozen=True, slots=True)
class AdtEvent:
    """One ADT message, read: the envelope (MSH/EVN), the patient, the visit and, for A40, the merge."""

    trigger: str  # MSH-9.2 (EVN-1 when MSH-9.2 is empty), e.g. A01
    control_id: str  # MSH-10
    sending_application: str  # MSH-3.1
    sending_facility: str  # MSH-4.1 (an ODS code in NHS feeds)
    message_time: datetime  # MSH-7
    event_time: datetime | None  # EVN-6 (event occurred), else EVN-2 (recorded)
    patient: PatientFacts
    visit: VisitFacts | None  # None when the message has no PV1
    merge: MergeFacts | None  # the first MRG (A40 and other merge events)

    @property
    def occurred_at(self) -> datetime:
        """When the event happened: EVN-6/EVN-2, else the admit or discharge time it carries, else MSH-7."""
        if self.event_time is not None:
            return self.event_time
        if self.visit is not None:
            visit_time = self.visit.discharged_at if self.trigger == "A03" else self.visit.admitted_at
            if visit_time is not None:
                return visit_time
        return self.message_time
