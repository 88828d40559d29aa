"""CareTeam ⇄ CareTeam (our KeyworkingCareTeam profile): one participant per membership.

``participant.role`` is our care-team-role code (plus SNOMED CT for social worker and GP), ``member`` the person,
``onBehalfOf`` their agency by ODS code, ``period`` the membership; a keyworker who replaced another carries the
``keyworker-change-reason`` extension. ``status`` is derived (``active`` while anyone is a member, else
``inactive``) and not read back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from mappings.keyworking import urls
from mappings.keyworking.elements import (
    Resource,
    agency_ref,
    codeable,
    ext,
    ext_value,
    fhir_date,
    meta,
    person_ref,
    read_agency,
    read_code,
    read_date,
    read_person,
    read_ref_id,
    ref,
    require_id,
    the_one,
)
from mappings.keyworking.errors import NotOurShape
from mappings.keyworking.records import CareTeam, CareTeamMember
from mappings.keyworking.terminology import CareTeamRole, KeyworkerChangeReason


def to_fhir(team: CareTeam) -> list[Resource]:
    tid = require_id(team.id, "care team")
    out: Resource = {
        "resourceType": "CareTeam",
        "id": tid,
        "meta": meta(urls.KEYWORKING_CARE_TEAM),
        "status": "active" if any(m.end is None for m in team.members) else "inactive",
    }
    if team.name is not None:
        out["name"] = team.name
    out["subject"] = ref("Patient", team.person_id)
    out["participant"] = [_participant(m) for m in team.members]
    return [out]


def _participant(member: CareTeamMember) -> Resource:
    out: Resource = {}
    if member.change_reason is not None:
        out["extension"] = [
            ext(urls.EXT_KEYWORKER_CHANGE_REASON, "valueCodeableConcept", codeable(member.change_reason))
        ]
    out["role"] = [codeable(member.role)]
    out["member"] = person_ref(member.member)
    if member.agency is not None:
        out["onBehalfOf"] = agency_ref(member.agency)
    period = {"start": fhir_date(member.start)}
    if member.end is not None:
        period["end"] = fhir_date(member.end)
    out["period"] = period
    return out


def from_fhir(resources: Iterable[Resource]) -> CareTeam:
    team = the_one(resources, "CareTeam")
    record: dict[str, Any] = {
        "id": team.get("id"),
        "person_id": read_ref_id(team.get("subject"), "Patient", "CareTeam.subject"),
        "members": [_member(p, f"CareTeam.participant[{i}]") for i, p in enumerate(team.get("participant", ()))],
    }
    if "name" in team:
        record["name"] = team["name"]
    try:
        return CareTeam.model_validate(record)
    except ValidationError as exc:
        raise NotOurShape("CareTeam", str(exc)) from None


def _member(participant: Resource, path: str) -> dict[str, Any]:
    roles = participant.get("role", ())
    if len(roles) != 1:
        raise NotOurShape(f"{path}.role", "a member has exactly one role")
    period = participant.get("period", {})
    out: dict[str, Any] = {
        "role": read_code(roles[0], CareTeamRole, f"{path}.role[0]"),
        "member": read_person(participant.get("member"), f"{path}.member"),
        "start": read_date(period.get("start"), f"{path}.period.start"),
    }
    if "end" in period:
        out["end"] = read_date(period["end"], f"{path}.period.end")
    if "onBehalfOf" in participant:
        out["agency"] = read_agency(participant["onBehalfOf"], f"{path}.onBehalfOf")
    reason = ext_value(participant, urls.EXT_KEYWORKER_CHANGE_REASON, "valueCodeableConcept")
    if reason is not None:
        out["change_reason"] = read_code(reason, KeyworkerChangeReason, f"{path}.extension(keyworker-change-reason)")
    return out
