"""Domain API answers reduced to the caller's sharing profile, as FHIR reads are (least data to each recipient).

The sharing profiles (:mod:`gateway.sync.sharing`) allow resource types and their top-level elements per
recipient type. A domain record is made of FHIR resources (:mod:`mappings.keyworking`), and each of its fields is
read from some of their elements (:data:`FIELD_SOURCES`). So, for a caller:

- a field is shown when the profile allows every element it is read from, and none of the resources of those
  types in the record is withheld (a resource labelled sensitive, such as the young person's views, goes to NHS
  providers only);
- a record kind whose main resource the profile does not allow at all is not shown: a read is 403 (audited), a
  list leaves it out;
- a field not listed in :data:`FIELD_SOURCES` is never shown outside development (``tests/unit`` checks the table
  covers every field, so a new field cannot reach a recipient unconsidered, nor vanish for the NHS).

An NHS provider or ICB (the full record in its profile) sees every field; the development caller sees the record
as stored. An answer reduced so may lack fields its schema calls required (a school's person has no ``sex``).
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from gateway.api.access import RECIPIENTS
from gateway.auth import Caller
from gateway.register.outcomes import RuleTask
from gateway.register.tasks import to_fhir as rule_task_to_fhir
from gateway.sync import sharing
from gateway.sync.sharing import Recipient
from mappings.identifiers import NHS_NUMBER_SYSTEM
from mappings.keyworking.mapping import MAIN_RESOURCE, to_fhir
from mappings.keyworking.records import (
    CareTeam,
    Contact,
    KeyworkingCase,
    Person,
    Recommendation,
    Record,
    RegisterEntry,
    ReviewMeeting,
)
from mappings.keyworking.urls import LA_CHILD_ID_PREFIX, UPN

Source = tuple[str, str]  # (resource type, top-level element)
Resource = dict[str, Any]

_CONSENT: tuple[Source, ...] = tuple(
    ("Consent", e) for e in ("extension", "status", "scope", "category", "patient", "dateTime", "performer", "policy")
)
_RECOMMENDATION: tuple[Source, ...] = tuple(
    ("Task", e) for e in ("description", "owner", "extension", "restriction", "status")
)

#: Per kind: each field → the (resource type, element) pairs its value is read from (none: always shown).
FIELD_SOURCES: dict[type[BaseModel], dict[str, tuple[Source, ...]]] = {
    Person: {
        "id": (),
        "nhs_number": (("Patient", "identifier"),),
        "nhs_number_verification": (("Patient", "identifier"),),
        "la_child_id": (("Patient", "identifier"),),
        "upn": (("Patient", "identifier"),),  # each also needs its identifier system shared: IDENTIFIER_FIELDS
        "name": (("Patient", "name"),),
        "birth_date": (("Patient", "birthDate"),),
        "sex": (("Patient", "gender"),),
        "postcode": (("Patient", "address"),),
        "gp_practice": (("Patient", "generalPractitioner"),),
        "diagnoses": (("Condition", "code"), ("Condition", "verificationStatus"), ("Condition", "recordedDate")),
        "looked_after": (("Patient", "extension"),),
    },
    RegisterEntry: {
        "id": (),
        "person_id": (("EpisodeOfCare", "patient"),),
        "status": (("EpisodeOfCare", "status"),),
        "referred_on": (("EpisodeOfCare", "period"),),
        "ended_on": (("EpisodeOfCare", "period"),),
        "managing_organisation": (("EpisodeOfCare", "managingOrganization"),),
        "consent": _CONSENT,
        "ratings": tuple(
            ("Observation", e) for e in ("valueCodeableConcept", "note", "performer", "effectiveDateTime", "extension")
        ),
    },
    KeyworkingCase: {
        "id": (),
        "person_id": (("EpisodeOfCare", "patient"),),
        "service_model": (("EpisodeOfCare", "type"),),
        "history": tuple(("EpisodeOfCare", e) for e in ("extension", "status", "statusHistory", "period")),
        "keyworkers": (("EpisodeOfCare", "careManager"), ("EpisodeOfCare", "extension")),
        "closure_reason": (("EpisodeOfCare", "extension"),),
        "care_team_id": (("EpisodeOfCare", "team"),),
        "managing_organisation": (("EpisodeOfCare", "managingOrganization"),),
    },
    CareTeam: {
        "id": (),
        "person_id": (("CareTeam", "subject"),),
        "name": (("CareTeam", "name"),),
        "members": (("CareTeam", "participant"),),
    },
    Contact: {
        "id": (),
        "person_id": (("Encounter", "subject"),),
        "case_id": (("Encounter", "episodeOfCare"),),
        "contact_type": (("Encounter", "type"), ("Encounter", "class")),
        "status": (("Encounter", "status"),),
        "start": (("Encounter", "period"),),
        "end": (("Encounter", "period"),),
        "place": (("Encounter", "location"),),
        "participants": (("Encounter", "participant"),),
        "views": (("Observation", "valueString"),),
    },
    ReviewMeeting: {
        "id": (),
        "person_id": (("Encounter", "subject"),),
        "register_entry_id": (("Encounter", "episodeOfCare"),),
        "case_id": (("Encounter", "episodeOfCare"),),
        "meeting_type": (("Encounter", "type"), ("Encounter", "class")),
        "status": (("Encounter", "status"),),
        "start": (("Encounter", "period"),),
        "end": (("Encounter", "period"),),
        "panel": (("Encounter", "participant"),),
        "attendees": (("Encounter", "participant"),),
        "consent_to_share": tuple(("Consent", e) for _, e in _CONSENT),
        "answers": (("Composition", "section"),),
        "needs_hospital": (("Encounter", "extension"),),
        "recommendations": _RECOMMENDATION,
    },
    Recommendation: {
        "id": (),
        "text": (("Task", "description"),),
        "owner": (("Task", "owner"),),
        "owner_agency": (("Task", "extension"),),
        "due": (("Task", "restriction"),),
        "status": (("Task", "status"),),
    },
    RuleTask: {
        "task_type": (("Task", "code"),),
        "trigger": (("Task", "reasonReference"),),
        "sequence": (("Task", "identifier"),),
        "person_id": (("Task", "for"),),
        "episode_id": (("Task", "focus"),),
        "description": (("Task", "description"),),
        "due": (("Task", "restriction"),),
        "authored_on": (("Task", "authoredOn"),),
        "status": (("Task", "status"),),
        "overdue": (("Task", "restriction"), ("Task", "status")),  # worked out from the due date and status
    },
}

#: Person fields that are a Patient identifier: the system each needs the recipient to share (sharing.py).
IDENTIFIER_FIELDS: dict[str, str] = {
    "nhs_number": NHS_NUMBER_SYSTEM,
    "nhs_number_verification": NHS_NUMBER_SYSTEM,
    "la_child_id": LA_CHILD_ID_PREFIX,
    "upn": UPN,
}

#: The resource type a kind's record is, for the profile (a recommendation and a rule Task are Tasks).
MAIN_TYPES: dict[type[BaseModel], str] = {
    **dict(MAIN_RESOURCE.items()),
    Recommendation: "Task",
    RuleTask: "Task",
}


def recipient_of(caller: Caller) -> Recipient | None:
    """The sharing profile a (non-development) caller's organisation type reads through; None: nothing."""
    return RECIPIENTS.get(caller.organisation_type)


def allows_element(recipient: Recipient, res_type: str, element: str) -> bool:
    profile = sharing.PROFILES[recipient]
    if res_type not in profile:
        return False
    elements = profile[res_type]
    return elements is None or element in elements or element in sharing.ALWAYS


def shown_fields(recipient: Recipient, kind: type[BaseModel], resources: Sequence[Resource]) -> frozenset[str] | None:
    """The fields of a ``kind`` record (made of ``resources``) this recipient sees; None when it sees no such
    record at all."""
    withheld = {str(r.get("resourceType")) for r in resources if sharing.reduce(recipient, r) is None}
    main = MAIN_TYPES[kind]
    if main in withheld or not sharing.allows(recipient, main):
        return None
    return frozenset(
        name
        for name, sources in FIELD_SOURCES[kind].items()
        if all(t not in withheld and allows_element(recipient, t, e) for t, e in sources)
        and (
            kind is not Person
            or name not in IDENTIFIER_FIELDS
            or sharing.shares_identifier(recipient, IDENTIFIER_FIELDS[name])
        )
    )


def resources_of(record: BaseModel) -> list[Resource]:
    """The FHIR resources the record is made of (what the profile is applied to)."""
    if isinstance(record, RuleTask):
        return [rule_task_to_fhir(record)]
    if type(record) in MAIN_RESOURCE and isinstance(record, Record):
        return to_fhir(record)
    return [{"resourceType": MAIN_TYPES[type(record)]}]


def minimised(caller: Caller, record: BaseModel, *, exclude_none: bool = True) -> dict[str, Any] | None:
    """The record as JSON as this caller may see it, or None when it may see no such record."""
    dump = record.model_dump(mode="json", exclude_none=exclude_none)
    if caller.development:
        return dump
    recipient = recipient_of(caller)
    if recipient is None:
        return None
    fields = shown_fields(recipient, type(record), resources_of(record))
    if fields is None:
        return None
    return {k: v for k, v in dump.items() if k in fields}


def may_see_kind(caller: Caller, kind: type[BaseModel]) -> bool:
    """Whether the caller sees records of this kind at all (before any is read)."""
    if caller.development:
        return True
    recipient = recipient_of(caller)
    return recipient is not None and sharing.allows(recipient, MAIN_TYPES[kind])


def shows_field(caller: Caller, kind: type[BaseModel], name: str) -> bool:
    """Whether the caller sees this field of such records (by profile alone, before any is read)."""
    if caller.development:
        return True
    recipient = recipient_of(caller)
    if recipient is None or not sharing.allows(recipient, MAIN_TYPES[kind]):
        return False
    if (
        kind is Person
        and name in IDENTIFIER_FIELDS
        and not sharing.shares_identifier(recipient, IDENTIFIER_FIELDS[name])
    ):
        return False
    return all(allows_element(recipient, t, e) for t, e in FIELD_SOURCES[kind].get(name, (("", ""),)))
