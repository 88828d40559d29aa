"""HL7 v2 ADT → FHIR: the hospital visit as an Encounter, with a Provenance naming the sending system. Pure.

What is read (HL7 field → element):

| HL7 | meaning | FHIR |
|---|---|---|
| MSH-3 / MSH-4 | sending application / facility (ODS) | Provenance.agent, Encounter.serviceProvider |
| MSH-7 / MSH-10 | message time / control id | Provenance.recorded / Provenance.entity (the message) |
| MSH-9.2 (EVN-1) | trigger event | Encounter.status (table below) |
| EVN-6 (EVN-2) | when it happened | Encounter.period, statusHistory |
| PID-3 (NHS, NH/HN) | NHS number | (who the visit is for: the caller resolves the Patient) |
| PID-32 | NHS number verification (NSTS01-08) | Visit.nhs_number_verification (01-08) |
| PV1-2 | patient class (I, O, E, P...) | Encounter.class (v3 ActCode: IMP, AMB, EMER, PRENC) |
| PV1-3 | location: point of care ^ room ^ bed ^ facility | Encounter.location[].location.display, with a period |
| PV1-10 | hospital service | Encounter.serviceType.coding (the sender's code) |
| PV1-19 | visit number | Encounter.identifier (system derived from the sending facility) |
| PV1-44 / PV1-45 | admit / discharge time | Encounter.period.start / end |

Status by event, given the Encounter the gateway already holds (``current``):

| event | new status | notes |
|---|---|---|
| A05 pre-admit | planned | only when there is no current Encounter |
| A01 admit, A04 register | in-progress | period.start = admit time |
| A02 transfer | in-progress | the previous location's period ends, the new one starts |
| A03 discharge | finished | period.end = discharge time; a finished Encounter stays as it is |
| A08 update | unchanged | details (location, class, service) updated |
| A11 cancel admit | cancelled | (entered-in-error would hide that the admission was announced) |
| A12 cancel transfer | in-progress | back to the location before the transfer (PV1-3 in an A12) |
| A13 cancel discharge | in-progress | period.end removed |

Times without an offset are Europe/London (``times.hl7_time``).
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mappings.hl7v2.times import hl7_time
from mappings.hl7v2.tokenizer import HL7ParseError, Message

Resource = dict[str, Any]

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
VISIT_NUMBER_PREFIX = "https://keyworking-gateway.org/fhir/Id/visit-number/"
MESSAGE_SYSTEM = "https://keyworking-gateway.org/fhir/Id/hl7v2-message/"

CLASSES = {
    "I": ("IMP", "inpatient encounter"),
    "O": ("AMB", "ambulatory"),
    "E": ("EMER", "emergency"),
    "P": ("PRENC", "pre-admission"),
    "R": ("AMB", "ambulatory"),
    "B": ("AMB", "ambulatory"),
}

#: The events that concern a visit (A28/A31/A40 are about the person only).
VISIT_EVENTS = frozenset({"A01", "A02", "A03", "A04", "A05", "A08", "A11", "A12", "A13"})


@dataclass(frozen=True, slots=True)
class Location:
    point_of_care: str
    room: str
    bed: str
    facility: str

    @property
    def display(self) -> str:
        return " / ".join(part for part in (self.facility, self.point_of_care, self.room, self.bed) if part)


@dataclass(frozen=True, slots=True)
class PersonFacts:
    """What an ADT message says about the person that the gateway keeps: NHS number verification and GP practice."""

    nhs_number_verification: str | None  # 01-08 (PID-32 NSTS01-08)
    gp_practice: str | None  # ODS code (PD1-3)
    prior_nhs_numbers: tuple[str, ...]  # MRG-1 (A40 merge)


def read_person_facts(message: Message) -> PersonFacts:
    pid, pd1, mrg = message.segment("PID"), message.segment("PD1"), message.segment("MRG")
    verification = None
    if pid is not None:
        status = pid.value(32).upper()
        if status.startswith("NSTS") and status[4:].isdigit() and 1 <= int(status[4:]) <= 8:
            verification = status[4:].zfill(2)
    gp = None
    if pd1 is not None and pd1.raw(3):
        # XON: the organisation identifier is component 3 (v2.4) or 10 (v2.5+); ODS codes are 3-10 letters/digits.
        for component in (3, 10):
            value = pd1.component(3, component).strip().upper()
            if value and value.isalnum() and 3 <= len(value) <= 10:
                gp = value
                break
    prior: list[str] = []
    if mrg is not None:
        for n in range(1, len(mrg.repetitions(1)) + 1):
            if mrg.component(1, 4, n).upper() == "NHS":
                prior.append(mrg.component(1, 1, n).replace(" ", ""))
    return PersonFacts(verification, gp, tuple(prior))


@dataclass(frozen=True, slots=True)
class Visit:
    trigger: str
    control_id: str
    sending_application: str
    sending_facility: str
    message_time: datetime | None
    occurred_at: datetime
    nhs_number: str | None
    nhs_number_verification: str | None  # 01-08
    patient_class: str
    location: Location | None
    prior_location: Location | None
    service: str
    visit_number: str
    admitted_at: datetime | None
    discharged_at: datetime | None


def _location(message: Message, field: int) -> Location | None:
    pv1 = message.segment("PV1")
    if pv1 is None or not pv1.raw(field):
        return None
    return Location(*(pv1.component(field, n) for n in (1, 2, 3, 4)))


def read_visit(message: Message) -> Visit:
    """The visit an ADT message describes; HL7ParseError naming the field when a value cannot be read."""
    msh, evn, pid, pv1 = message.msh, message.segment("EVN"), message.segment("PID"), message.segment("PV1")
    trigger = msh.component(9, 2) or (evn.value(1) if evn else "")
    if not trigger:
        raise HL7ParseError("no trigger event", "MSH-9.2")
    nhs, verification = None, None
    if pid is not None:
        for n in range(1, len(pid.repetitions(3)) + 1):
            authority, kind = pid.component(3, 4, n).upper(), pid.component(3, 5, n).upper()
            if authority == "NHS" and kind in ("NH", "HN", ""):
                nhs = pid.component(3, 1, n).replace(" ", "")
                break
        status = pid.value(32).upper()
        if status.startswith("NSTS") and status[4:].isdigit():
            verification = status[4:].zfill(2)
    message_time = hl7_time(msh.value(7), "MSH-7")
    admitted = hl7_time(pv1.value(44), "PV1-44") if pv1 else None
    discharged = hl7_time(pv1.value(45), "PV1-45") if pv1 else None
    occurred = None
    if evn is not None:
        occurred = hl7_time(evn.value(6), "EVN-6") or hl7_time(evn.value(2), "EVN-2")
    occurred = occurred or (discharged if trigger == "A03" else admitted) or message_time or datetime.now(UTC)
    return Visit(
        trigger=trigger,
        control_id=msh.value(10),
        sending_application=msh.value(3),
        sending_facility=msh.value(4),
        message_time=message_time,
        occurred_at=occurred,
        nhs_number=nhs,
        nhs_number_verification=verification,
        patient_class=(pv1.value(2) if pv1 else "").upper(),
        location=_location(message, 3),
        prior_location=_location(message, 6),
        service=pv1.value(10) if pv1 else "",
        visit_number=pv1.component(19, 1) if pv1 else "",
        admitted_at=admitted,
        discharged_at=discharged,
    )


def encounter_id(visit: Visit) -> str:
    """A stable Encounter id for a hospital visit (sending facility + visit number; the message if none)."""
    key = f"{visit.sending_facility}|{visit.visit_number or visit.control_id}"
    return "hl7-" + str(uuid.uuid5(uuid.NAMESPACE_URL, VISIT_NUMBER_PREFIX + key))


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _location_entry(location: Location, start: datetime, status: str = "active") -> Resource:
    return {"location": {"display": location.display}, "status": status, "period": {"start": _instant(start)}}


def encounter_for(visit: Visit, current: Resource | None, *, patient_id: str) -> Resource | None:
    """The Encounter after this event (None: the event changes nothing, or is not about a visit)."""
    if visit.trigger not in VISIT_EVENTS:
        return None
    if current is None:
        if visit.trigger in ("A03", "A08", "A11", "A12", "A13"):
            # Nothing to update or cancel: record what the event says happened.
            status = {"A03": "finished", "A11": "cancelled"}.get(visit.trigger, "in-progress")
        else:
            status = "planned" if visit.trigger == "A05" else "in-progress"
        encounter: Resource = {
            "resourceType": "Encounter",
            "id": encounter_id(visit),
            "status": status,
            "subject": {"reference": f"Patient/{patient_id}"},
        }
    else:
        encounter = {k: copy.deepcopy(v) for k, v in current.items() if k != "meta"}
        old = encounter.get("status")
        new = _transition(visit.trigger, str(old))
        if new is None:
            return None
        if new != old:
            history = encounter.setdefault("statusHistory", [])
            history.append({"status": old, "period": {"end": _instant(visit.occurred_at)}})
        encounter["status"] = new
    _details(encounter, visit)
    return encounter


def _transition(trigger: str, status: str) -> str | None:
    if trigger in ("A01", "A04", "A02", "A12", "A13"):
        return "in-progress" if status != "cancelled" or trigger in ("A01", "A04") else None
    if trigger == "A03":
        return None if status == "finished" else "finished"
    if trigger == "A11":
        return None if status == "cancelled" else "cancelled"
    if trigger == "A05":
        return None if status != "planned" else "planned"
    if trigger == "A08":
        return status
    return None


def _details(encounter: Resource, visit: Visit) -> None:
    code, display = CLASSES.get(visit.patient_class, ("IMP", "inpatient encounter"))
    encounter["class"] = {"system": ACT_CODE, "code": code, "display": display}
    if visit.visit_number:
        system = VISIT_NUMBER_PREFIX + (visit.sending_facility or "unknown")
        encounter["identifier"] = [{"system": system, "value": visit.visit_number}]
    if visit.sending_facility:
        encounter["serviceProvider"] = {"identifier": {"system": ODS, "value": visit.sending_facility}}
    if visit.service:
        encounter["serviceType"] = {"coding": [{"code": visit.service}]}
    period = encounter.setdefault("period", {})
    if visit.admitted_at is not None and visit.trigger != "A05":
        period["start"] = _instant(visit.admitted_at)
    elif "start" not in period and encounter["status"] != "planned":
        period["start"] = _instant(visit.occurred_at)
    if encounter["status"] == "finished":
        period["end"] = _instant(visit.discharged_at or visit.occurred_at)
    elif visit.trigger == "A13":
        period.pop("end", None)
    if not period:
        encounter.pop("period")
    _locations(encounter, visit)


def _locations(encounter: Resource, visit: Visit) -> None:
    locations: list[Resource] = encounter.setdefault("location", [])
    target = visit.location  # in an A12, PV1-3 is where the patient goes back to (HL7 v2.5 3.3.12)
    if target is None:
        if not locations:
            encounter.pop("location")
        return
    active = [loc for loc in locations if loc.get("status") == "active"]
    if active and active[-1].get("location", {}).get("display") == target.display:
        return
    for loc in active:
        loc["status"] = "completed"
        loc.setdefault("period", {})["end"] = _instant(visit.occurred_at)
    locations.append(_location_entry(target, visit.occurred_at))


def provenance_for(visit: Visit, targets: list[str], *, provenance_id: str) -> Resource:
    """Who said so: the sending system, the message, when (``targets``: ``Type/id/_history/n`` references)."""
    who = visit.sending_application or "unknown system"
    return {
        "resourceType": "Provenance",
        "id": provenance_id,
        "target": [{"reference": t} for t in targets],
        "recorded": _instant(visit.message_time or visit.occurred_at),
        "activity": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                    "code": "UPDATE",
                    "display": "revise",
                }
            ]
        },
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "author",
                        }
                    ]
                },
                "who": {"display": f"{who} at {visit.sending_facility}"},
                "onBehalfOf": {"identifier": {"system": ODS, "value": visit.sending_facility or "UNKNOWN"}},
            }
        ],
        "entity": [
            {
                "role": "source",
                "what": {
                    "identifier": {
                        "system": MESSAGE_SYSTEM + (visit.sending_facility or "unknown"),
                        "value": visit.control_id,
                    },
                    "display": f"HL7 v2 ADT^{visit.trigger}",
                },
            }
        ],
    }
