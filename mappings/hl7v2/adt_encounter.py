"""The Encounter a visit event leads to, from the Encounter the gateway holds for that visit. Pure.

The status comes from :mod:`mappings.hl7v2.encounter_status`; this module applies it and the details PV1 carries:
class, visit number, service provider, hospital service, period and the location history.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from mappings.hl7v2 import encounter_status, systems
from mappings.hl7v2.errors import AdtError
from mappings.hl7v2.event import AdtEvent, Location, VisitFacts

Resource = dict[str, Any]

#: PV1-2 patient class (HL7 table 0004) → v3 ActCode encounter class. B (obstetrics) patients are inpatients,
#: R (recurring) visits are clinic visits; C (commercial), N (not applicable) and U (unknown) have no class.
CLASSES: dict[str, tuple[str, str]] = {
    "I": ("IMP", "inpatient encounter"),
    "B": ("IMP", "inpatient encounter"),
    "O": ("AMB", "ambulatory"),
    "R": ("AMB", "ambulatory"),
    "E": ("EMER", "emergency"),
    "P": ("PRENC", "pre-admission"),
}


def instant(moment: datetime) -> str:
    """A FHIR instant in UTC (``Z``), to the second unless the sender gave fractions."""
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def encounter_class(patient_class: str) -> Resource:
    if patient_class in CLASSES:
        code, display = CLASSES[patient_class]
        return {"system": systems.V3_ACT_CODE, "code": code, "display": display}
    return {"system": systems.V3_NULL_FLAVOR, "code": "UNK", "display": "unknown"}


def encounter_resource(
    event: AdtEvent, current: Resource | None, *, patient_id: str, encounter_id: str, source: str
) -> Resource | None:
    """The Encounter after this event; None when it changes nothing (or is not a visit event)."""
    visit = event.visit
    if visit is None or event.trigger not in encounter_status.EVENTS:
        return None
    current_status = None if current is None else str(current.get("status"))
    outcome = encounter_status.outcome(event.trigger, current_status)
    if outcome == encounter_status.NO_CHANGE:
        return None
    if outcome == encounter_status.REFUSED:
        raise AdtError(
            "MSH-9.2",
            f"ADT^{event.trigger} cannot apply to visit {visit.visit_number or '(no PV1-19)'}, "
            f"which the gateway holds as {current_status}",
        )
    if outcome == encounter_status.AS_SENT:
        outcome = "finished" if visit.discharged_at is not None else "in-progress"
    encounter: Resource = {k: copy.deepcopy(v) for k, v in (current or {}).items() if k != "meta"}
    encounter.update(resourceType="Encounter", id=encounter_id)
    encounter["meta"] = {"profile": [systems.UKCORE_ENCOUNTER], "source": source}
    _status(encounter, current_status, outcome, event.occurred_at)
    encounter["subject"] = {"reference": f"Patient/{patient_id}"}
    _details(encounter, event, visit)
    _period(encounter, event, visit)
    _locations(encounter, event, visit)
    if current is not None and _same(encounter, current):
        return None
    return encounter


def _same(encounter: Resource, current: Resource) -> bool:
    strip = {"meta"}
    return {k: v for k, v in encounter.items() if k not in strip} == {
        k: v for k, v in current.items() if k not in strip
    }


def _status(encounter: Resource, old: str | None, new: str, at: datetime) -> None:
    if old is not None and old != new:
        history: list[Resource] = encounter.setdefault("statusHistory", [])
        period: Resource = {"end": instant(at)}
        began = history[-1]["period"].get("end") if history else encounter.get("period", {}).get("start")
        if began is not None and began <= period["end"]:
            period = {"start": began, **period}
        history.append({"status": old, "period": period})
    encounter["status"] = new


def _details(encounter: Resource, event: AdtEvent, visit: VisitFacts) -> None:
    if visit.patient_class or "class" not in encounter:
        encounter["class"] = encounter_class(visit.patient_class)
    facility = event.sending_facility
    if visit.visit_number:
        encounter["identifier"] = [
            {
                "use": "official",
                "type": {"coding": [{"system": systems.V2_IDENTIFIER_TYPE, "code": "VN"}]},
                "system": systems.per_sender(systems.VISIT_NUMBER_PREFIX, facility),
                "value": visit.visit_number,
            }
        ]
    if facility:
        encounter["serviceProvider"] = {
            "type": "Organization",
            "identifier": {"system": systems.ODS_ORGANISATION_SYSTEM, "value": facility},
        }
    if visit.hospital_service:
        encounter["serviceType"] = {
            "coding": [
                {
                    "system": systems.per_sender(systems.HOSPITAL_SERVICE_PREFIX, facility),
                    "code": visit.hospital_service,
                }
            ]
        }


def _period(encounter: Resource, event: AdtEvent, visit: VisitFacts) -> None:
    period: Resource = encounter.get("period", {})
    status = encounter["status"]
    if visit.admitted_at is not None:
        period["start"] = instant(visit.admitted_at)
    elif "start" not in period and status in ("in-progress", "finished"):
        period["start"] = instant(event.occurred_at)
    if status == "finished" and (event.trigger == "A03" or "end" not in period):
        period["end"] = instant(visit.discharged_at or event.occurred_at)
    elif status != "finished":
        period.pop("end", None)
    if "start" in period and "end" in period and period["end"] < period["start"]:
        raise AdtError("PV1-45", "the discharge is before the admission (PV1-44)")
    if period:
        encounter["period"] = period
    else:
        encounter.pop("period", None)


def _entry(location: Location, status: str, start: datetime) -> Resource:
    return {"location": {"display": location.display}, "status": status, "period": {"start": instant(start)}}


def _display(entry: Resource) -> str:
    return str(entry.get("location", {}).get("display", ""))


def _locations(encounter: Resource, event: AdtEvent, visit: VisitFacts) -> None:
    entries: list[Resource] = encounter.get("location", [])
    open_ = [e for e in entries if e.get("status") in ("active", "planned")]
    at, trigger, target = event.occurred_at, event.trigger, visit.location
    if trigger == "A12":
        _cancel_transfer(entries, target, at)
    elif trigger == "A13":
        finished = [e for e in entries if e.get("status") == "completed"]
        if finished and not open_:
            finished[-1]["status"] = "active"
            finished[-1].get("period", {}).pop("end", None)
    elif trigger == "A03" or encounter["status"] in ("finished", "cancelled"):
        for entry in open_:
            entry["status"] = "completed"
            entry.setdefault("period", {})["end"] = instant(visit.discharged_at or at)
        if not entries and target is not None and encounter["status"] == "finished":
            entries.append(_entry(target, "completed", visit.admitted_at or at))
            entries[-1]["period"]["end"] = instant(visit.discharged_at or at)
    elif target is not None:
        status = "planned" if encounter["status"] == "planned" else "active"
        if open_ and _display(open_[-1]) == target.display:
            open_[-1]["status"] = status
        elif trigger == "A02" and open_:
            for entry in open_:  # the ward they left: its period ends when the transfer happened
                entry["status"] = "completed"
                entry.setdefault("period", {})["end"] = instant(at)
            entries.append(_entry(target, status, at))
        elif open_:  # A01/A04/A05/A08 naming another place: a correction, not a move
            open_[-1]["location"] = {"display": target.display}
            open_[-1]["status"] = status
        else:
            entries.append(_entry(target, status, visit.admitted_at or at))
    if entries:
        encounter["location"] = entries
    else:
        encounter.pop("location", None)


def _cancel_transfer(entries: list[Resource], back_to: Location | None, at: datetime) -> None:
    """Undo the last transfer: drop the location it added and reopen the one before (PV1-3 names it in an A12)."""
    open_ = [e for e in entries if e.get("status") == "active"]
    if open_ and len(entries) > 1 and entries[-1] is open_[-1]:
        entries.pop()
        previous = entries[-1]
        previous["status"] = "active"
        previous.get("period", {}).pop("end", None)
    if back_to is not None and (not entries or _display(entries[-1]) != back_to.display):
        for entry in entries:
            if entry.get("status") == "active":
                entry["status"] = "completed"
                entry.setdefault("period", {})["end"] = instant(at)
        entries.append(_entry(back_to, "active", at))
