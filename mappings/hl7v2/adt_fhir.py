"""ADT event → the FHIR changes it leads to: Patient, Encounter and a Provenance saying where they came from. Pure.

The caller resolves identities (which gateway Patient the message is about, which Encounter id the visit has,
which Patients an A40 merges) and passes the resources it currently holds; this module decides what changes.
Provenance targets the versions the changes will become (``meta.versionId`` + 1 of the current resource, or 1 for
a new one): the store writes them with If-Match on the current version, so the reference is exact.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mappings.hl7v2 import systems
from mappings.hl7v2.adt_encounter import encounter_resource, instant
from mappings.hl7v2.adt_patient import patient_resource
from mappings.hl7v2.event import PERSON_EVENTS, AdtEvent

Resource = dict[str, Any]


@dataclass(frozen=True, slots=True)
class AdtChanges:
    """What to write. A None resource is unchanged; no Provenance when nothing changes."""

    patient: Resource | None
    encounter: Resource | None
    provenance: Resource | None

    @property
    def resources(self) -> tuple[Resource, ...]:
        """The resources to write, Provenance last (it refers to the others)."""
        return tuple(r for r in (self.patient, self.encounter, self.provenance) if r is not None)


def _next_version(current: Resource | None) -> int | None:
    if current is None:
        return 1
    version = str(current.get("meta", {}).get("versionId", ""))
    return int(version) + 1 if version.isdigit() else None


def _same_patient(patient: Resource, current: Resource | None) -> bool:
    if current is None:
        return False
    mine = {k: v for k, v in patient.items() if k != "meta"}
    theirs = {k: v for k, v in current.items() if k != "meta"}
    return mine == theirs and set(patient["meta"]["profile"]) <= set(current.get("meta", {}).get("profile", []))


def to_fhir(
    event: AdtEvent,
    *,
    patient_id: str,
    encounter_id: str,
    source: str,
    current_patient: Resource | None = None,
    current_encounter: Resource | None = None,
    replaces: Sequence[str] = (),
) -> AdtChanges:
    """The changes an ADT event makes. ``source`` is the URI of the stored message (``meta.source``);
    ``replaces`` the gateway Patient ids an A40 merges into ``patient_id``. Raises
    :class:`~mappings.hl7v2.errors.AdtError` for an event that cannot apply to the current Encounter."""
    if event.trigger not in PERSON_EVENTS:
        return AdtChanges(None, None, None)
    patient: Resource | None = patient_resource(
        event, current_patient, patient_id=patient_id, source=source, replaces=replaces
    )
    if patient is not None and _same_patient(patient, current_patient):
        patient = None
    encounter = encounter_resource(
        event, current_encounter, patient_id=patient_id, encounter_id=encounter_id, source=source
    )
    targets = []
    if patient is not None:
        targets.append(_target("Patient", patient_id, current_patient))
    if encounter is not None:
        targets.append(_target("Encounter", encounter_id, current_encounter))
    if not targets:
        return AdtChanges(None, None, None)
    created = (patient is not None and current_patient is None) or (encounter is not None and current_encounter is None)
    return AdtChanges(patient, encounter, provenance_resource(event, targets, source=source, created=created))


def _target(resource_type: str, resource_id: str, current: Resource | None) -> str:
    version = _next_version(current)
    reference = f"{resource_type}/{resource_id}"
    return reference if version is None else f"{reference}/_history/{version}"


def provenance_id(event: AdtEvent, targets: Sequence[str]) -> str:
    """Stable for a message and what it changed, so processing the same message twice writes one Provenance."""
    key = "|".join([event.sending_facility, event.control_id, *targets])
    return "hl7-" + str(uuid.uuid5(uuid.NAMESPACE_URL, systems.MESSAGE_PREFIX + key))


def provenance_resource(event: AdtEvent, targets: Sequence[str], *, source: str, created: bool) -> Resource:
    """Who said so (the sending system on behalf of the sending organisation), when, and in which message."""
    facility = event.sending_facility
    application = event.sending_application or "unknown system"
    operation = ("CREATE", "create") if created else ("UPDATE", "revise")
    return {
        "resourceType": "Provenance",
        "id": provenance_id(event, targets),
        "meta": {"profile": [systems.UKCORE_PROVENANCE], "source": source},
        "target": [{"reference": t} for t in targets],
        "occurredDateTime": instant(event.occurred_at),
        "recorded": instant(event.message_time),
        "activity": {"coding": [{"system": systems.V3_DATA_OPERATION, "code": operation[0], "display": operation[1]}]},
        "agent": [
            {
                "type": {"coding": [{"system": systems.PROVENANCE_PARTICIPANT_TYPE, "code": "author"}]},
                "who": {
                    "type": "Device",
                    "identifier": {
                        "system": systems.per_sender(systems.APPLICATION_PREFIX, facility),
                        "value": application,
                    },
                    "display": f"{application} at {facility or 'an unnamed facility'}",
                },
                **(
                    {
                        "onBehalfOf": {
                            "type": "Organization",
                            "identifier": {"system": systems.ODS_ORGANISATION_SYSTEM, "value": facility},
                        }
                    }
                    if facility
                    else {}
                ),
            }
        ],
        "entity": [
            {
                "role": "source",
                "what": {
                    "identifier": {
                        "system": systems.per_sender(systems.MESSAGE_PREFIX, facility),
                        "value": event.control_id,
                    },
                    "display": f"HL7 v2 ADT^{event.trigger}",
                },
            }
        ],
    }
