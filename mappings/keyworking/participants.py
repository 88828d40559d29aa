"""Encounter participants for contacts and meetings: attendees with a care-team role, or plain attenders.

An attendee with a role carries our care-team-role code in ``participant.type``; one without carries the HL7
ParticipationType ``ATND`` (attender). Panel members (C(E)TRs) carry our panel-role code instead; see
:mod:`mappings.keyworking.review`.
"""

from __future__ import annotations

from typing import Any

from mappings.keyworking import urls
from mappings.keyworking.elements import Resource, codeable, find_code, person_ref, read_person
from mappings.keyworking.errors import NotOurShape
from mappings.keyworking.records import Attendee
from mappings.keyworking.terminology import CareTeamRole

ATTENDER = {"system": urls.V3_PARTICIPATION_TYPE, "code": "ATND", "display": "attender"}


def attendee_to_fhir(attendee: Attendee) -> Resource:
    kind = codeable(attendee.role) if attendee.role is not None else {"coding": [dict(ATTENDER)]}
    return {"type": [kind], "individual": person_ref(attendee.person)}


def is_attender(participant: Resource) -> bool:
    for kind in participant.get("type", ()):
        if find_code(kind, CareTeamRole) is not None:
            return True
        if any(c.get("system") == ATTENDER["system"] and c.get("code") == "ATND" for c in kind.get("coding", ())):
            return True
    return False


def attendee_from_fhir(participant: Resource, path: str) -> dict[str, Any]:
    types = participant.get("type", ())
    if len(types) != 1:
        raise NotOurShape(f"{path}.type", "an attendee has exactly one type")
    out: dict[str, Any] = {"person": read_person(participant.get("individual"), f"{path}.individual")}
    role = find_code(types[0], CareTeamRole)
    if role is not None:
        out["role"] = role
    return out
