"""HL7 v2 ADT messages: read into an :class:`AdtEvent`, map to FHIR changes, spot mental-health admissions. Pure.

The entry points:

* :func:`read_adt` - the typed record of what a message says, or :class:`AdtError` naming the field that is wrong
  (the listener turns it into an AE acknowledgement with ERR);
* :func:`to_fhir` - the Patient, Encounter and Provenance the event leads to, given the Encounter the gateway
  already holds (``docs/hl7v2-mapping.md`` has the field and status tables);
* :func:`is_mental_health_admission` - whether the event admits someone to a configured mental-health inpatient
  setting (the register's blue rating).

Only the first patient group is read (A40 may carry several PID/MRG pairs: the caller sends the rest one by one).
"""

from __future__ import annotations

from mappings.hl7v2.admission_alert import AdmissionAlertRules, is_mental_health_admission
from mappings.hl7v2.adt_fhir import AdtChanges, to_fhir
from mappings.hl7v2.dtm import parse_date, parse_instant
from mappings.hl7v2.errors import AdtError
from mappings.hl7v2.event import (
    PERSON_EVENTS,
    VISIT_EVENTS,
    AdtEvent,
    Location,
    MergeFacts,
    PatientFacts,
    PatientIdentifier,
    PersonName,
    VisitFacts,
)
from mappings.hl7v2.tokenizer import Message, Segment
from mappings.identifiers import is_nhs_number, normalise_nhs_number

__all__ = [
    "PERSON_EVENTS",
    "VISIT_EVENTS",
    "AdmissionAlertRules",
    "AdtChanges",
    "AdtError",
    "AdtEvent",
    "Location",
    "MergeFacts",
    "PatientFacts",
    "PatientIdentifier",
    "PersonName",
    "VisitFacts",
    "is_mental_health_admission",
    "read_adt",
    "to_fhir",
]

#: CX.5 identifier types that mark an NHS number (Epic feeds send HN).
NHS_NUMBER_TYPES = frozenset({"NH", "HN", ""})
_VERIFICATION_CODES = frozenset(f"{n:02d}" for n in range(1, 9))


def read_adt(message: Message) -> AdtEvent:
    """The ADT event a parsed message carries. Raises :class:`AdtError` naming the segment/field at fault."""
    msh, evn = message.msh, message.segment("EVN")
    message_type = msh.component(9, 1).strip().upper()
    if message_type != "ADT":
        raise AdtError("MSH-9.1", f"message type {message_type or '(empty)'!r} is not ADT")
    trigger = (msh.component(9, 2) or (evn.value(1) if evn is not None else "")).strip().upper()
    if not trigger:
        raise AdtError("MSH-9.2", "no trigger event (and no EVN-1)")
    control_id = msh.value(10).strip()
    if not control_id:
        raise AdtError("MSH-10", "no message control id")
    message_time = parse_instant(msh.value(7), "MSH-7")
    if message_time is None:
        raise AdtError("MSH-7", "no message date/time")
    event_time = None
    if evn is not None:
        event_time = parse_instant(evn.value(6), "EVN-6") or parse_instant(evn.value(2), "EVN-2")
    pid = message.segment("PID")
    if pid is None:
        raise AdtError("PID", f"ADT^{trigger} has no PID segment")
    pv1 = message.segment("PV1")
    if pv1 is None and trigger in VISIT_EVENTS:
        raise AdtError("PV1", f"ADT^{trigger} has no PV1 segment")
    mrg = message.segment("MRG")
    if mrg is None and trigger == "A40":
        raise AdtError("MRG", "ADT^A40 has no MRG segment")
    return AdtEvent(
        trigger=trigger,
        control_id=control_id,
        sending_application=msh.component(3, 1, 1, 1).strip(),
        sending_facility=msh.component(4, 1, 1, 1).strip().upper(),
        message_time=message_time,
        event_time=event_time,
        patient=_patient(pid, message.segment("PD1")),
        visit=_visit(pv1) if pv1 is not None else None,
        merge=_merge(mrg, required=trigger == "A40") if mrg is not None else None,
    )


def _identifiers(segment: Segment, field: int) -> list[PatientIdentifier]:
    out = []
    for n in range(1, len(segment.repetitions(field)) + 1):
        value = segment.component(field, 1, n).strip()
        if value:
            authority = segment.component(field, 4, n, 1).strip().upper()
            out.append(PatientIdentifier(value, authority, segment.component(field, 5, n).strip().upper()))
    return out


def _is_nhs(identifier: PatientIdentifier) -> bool:
    return identifier.assigning_authority == "NHS" and identifier.type_code in NHS_NUMBER_TYPES


def _patient(pid: Segment, pd1: Segment | None) -> PatientFacts:
    identifiers = _identifiers(pid, 3)
    if not identifiers:
        raise AdtError("PID-3", "no patient identifier")
    nhs_number = None
    local = []
    for ident in identifiers:
        if nhs_number is None and _is_nhs(ident):
            nhs_number = normalise_nhs_number(ident.value)
            if not is_nhs_number(nhs_number):
                raise AdtError("PID-3", "the NHS number is not ten digits with a valid check digit")
        else:
            local.append(ident)
    return PatientFacts(
        nhs_number=nhs_number,
        nhs_number_verification=_verification(pid),
        local_identifiers=tuple(local),
        names=_names(pid),
        birth_date=parse_date(pid.value(7), "PID-7"),
        sex=pid.value(8).strip().upper(),
        postcode=_postcode(pid),
        gp_practice=_gp_practice(pd1),
    )


def _verification(pid: Segment) -> str | None:
    """PID-32 (identity reliability, repeating): NSTS01-08 (HSCIC table 0445 extension), or a bare 01-08."""
    for n in range(1, len(pid.repetitions(32)) + 1):
        code = pid.component(32, 1, n).strip().upper()
        digits = code[4:] if code.startswith("NSTS") else code
        if digits in _VERIFICATION_CODES:
            return digits
        if code.startswith("NSTS"):
            raise AdtError("PID-32", f"{code!r} is not an NHS number verification status (NSTS01-NSTS08)")
    return None


def _names(pid: Segment) -> tuple[PersonName, ...]:
    names = []
    for n in range(1, len(pid.repetitions(5)) + 1):
        family = pid.component(5, 1, n, 1).strip()  # XPN.1 is FN: surname & own-surname prefix & ...
        given = tuple(g for g in (pid.component(5, 2, n).strip(), pid.component(5, 3, n).strip()) if g)
        if family or given:
            prefix, suffix = pid.component(5, 5, n).strip(), pid.component(5, 4, n).strip()
            names.append(PersonName(family, given, prefix, suffix, pid.component(5, 7, n).strip().upper()))
    return tuple(names)


def _postcode(pid: Segment) -> str | None:
    reps = range(1, len(pid.repetitions(11)) + 1)
    ordered = sorted(reps, key=lambda n: pid.component(11, 7, n).strip().upper() != "H")  # home address first
    for n in ordered:
        postcode = " ".join(pid.component(11, 5, n).upper().split())
        if postcode:
            return postcode
    return None


def _gp_practice(pd1: Segment | None) -> str | None:
    """PD1-3 XON: the organisation identifier is component 3 (v2.4, ITK) or 10 (v2.5+); ODS codes are 3-10
    letters and digits, so a longer local code is not taken for one."""
    if pd1 is None:
        return None
    for component in (3, 10):
        value = pd1.component(3, component).strip().upper()
        if value and value.isascii() and value.isalnum() and 3 <= len(value) <= 10:
            return value
    return None


def _location(pv1: Segment, field: int) -> Location | None:
    if not pv1.raw(field):
        return None
    point_of_care, room, bed, facility = (pv1.component(field, n, 1, 1).strip() for n in (1, 2, 3, 4))
    location = Location(point_of_care, room, bed, facility, pv1.component(field, 9).strip())
    return location if location.display else None


def _visit(pv1: Segment) -> VisitFacts:
    return VisitFacts(
        patient_class=pv1.value(2).strip().upper(),
        location=_location(pv1, 3),
        prior_location=_location(pv1, 6),
        hospital_service=pv1.value(10).strip().upper(),
        visit_number=pv1.component(19, 1).strip(),
        admitted_at=parse_instant(pv1.value(44), "PV1-44"),
        discharged_at=parse_instant(pv1.value(45), "PV1-45"),
    )


def _merge(mrg: Segment, *, required: bool) -> MergeFacts | None:
    """MRG-1; an A40 without one cannot say what to merge (other events may carry an MRG with only an account)."""
    prior = _identifiers(mrg, 1)
    if not prior:
        if required:
            raise AdtError("MRG-1", "no prior patient identifier")
        return None
    normalised = []
    for ident in prior:
        if _is_nhs(ident):
            value = normalise_nhs_number(ident.value)
            if not is_nhs_number(value):
                raise AdtError("MRG-1", "the prior NHS number is not ten digits with a valid check digit")
            ident = PatientIdentifier(value, ident.assigning_authority, ident.type_code)
        normalised.append(ident)
    return MergeFacts(tuple(normalised))
