"""Contact ⇄ Encounter (our KeyworkingContactEncounter profile) + an Observation holding the young person's views.

``type`` is our contact-type code (plus SNOMED CT 439708006 for a home visit); ``class`` follows from it (home
visit → HH, monitoring call → VR, visits and detached work elsewhere → FLD, sessions and group work → AMB) and is
not read back. ``episodeOfCare`` is the keyworking case, ``location[0].location.display`` the place.

The young person's views are sensitive, so they are not in the Encounter: they are an Observation
(``<id>-views``, ``valueString``, ``encounter`` the contact) whose ``meta.security`` is v3-Confidentiality ``R``
(restricted). Sharing rules can drop it while still sharing that the contact happened.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from mappings.keyworking import urls
from mappings.keyworking.elements import (
    RESTRICTED,
    Resource,
    codeable,
    datetime_period,
    fhir_datetime,
    has_code,
    meta,
    of_type,
    read_code,
    read_datetime,
    read_ref_id,
    ref,
    require_id,
    the_one,
)
from mappings.keyworking.errors import NotOurShape
from mappings.keyworking.participants import attendee_from_fhir, attendee_to_fhir
from mappings.keyworking.records import Contact, MeetingStatus
from mappings.keyworking.terminology import ContactType, ObservationCode

ENCOUNTER_CLASS: dict[ContactType, tuple[str, str]] = {
    ContactType.SESSION: ("AMB", "ambulatory"),
    ContactType.HOME_VISIT: ("HH", "home health"),
    ContactType.HOSPITAL_VISIT: ("FLD", "field"),
    ContactType.SCHOOL_VISIT: ("FLD", "field"),
    ContactType.MONITORING_CALL: ("VR", "virtual"),
    ContactType.GROUP_WORK: ("AMB", "ambulatory"),
    ContactType.DETACHED_WORK: ("FLD", "field"),
}


def views_id(contact_id: str) -> str:
    return f"{contact_id}-views"


def encounter_class(code: str, display: str) -> dict[str, str]:
    return {"system": urls.V3_ACT_CODE, "code": code, "display": display}


def to_fhir(contact: Contact) -> list[Resource]:
    """The Encounter, then the views Observation if the young person's views were recorded."""
    cid = require_id(contact.id, "contact")
    encounter: Resource = {
        "resourceType": "Encounter",
        "id": cid,
        "meta": meta(urls.KEYWORKING_CONTACT_ENCOUNTER),
        "status": contact.status.value,
        "class": encounter_class(*ENCOUNTER_CLASS[contact.contact_type]),
        "type": [codeable(contact.contact_type)],
        "subject": ref("Patient", contact.person_id),
    }
    if contact.case_id is not None:
        encounter["episodeOfCare"] = [ref("EpisodeOfCare", contact.case_id)]
    if contact.participants:
        encounter["participant"] = [attendee_to_fhir(a) for a in contact.participants]
    encounter["period"] = datetime_period(contact.start, contact.end)
    if contact.place is not None:
        encounter["location"] = [{"location": {"display": contact.place}}]
    out = [encounter]
    if contact.views is not None:
        out.append(
            {
                "resourceType": "Observation",
                "id": views_id(cid),
                "meta": meta(urls.UKCORE_OBSERVATION, security=[RESTRICTED]),
                "status": "final",
                "code": codeable(ObservationCode.YOUNG_PERSONS_VIEWS),
                "subject": ref("Patient", contact.person_id),
                "encounter": ref("Encounter", cid),
                "effectiveDateTime": fhir_datetime(contact.start),
                "valueString": contact.views,
            }
        )
    return out


def from_fhir(resources: Iterable[Resource]) -> Contact:
    resources = list(resources)
    encounter = the_one(resources, "Encounter")
    cid = str(encounter.get("id"))
    types = encounter.get("type", ())
    if len(types) != 1:
        raise NotOurShape("Encounter.type", "a contact has exactly one type")
    p = encounter.get("period", {})
    record: dict[str, Any] = {
        "id": cid,
        "person_id": read_ref_id(encounter.get("subject"), "Patient", "Encounter.subject"),
        "contact_type": read_code(types[0], ContactType, "Encounter.type[0]"),
        "status": _status(encounter),
        "start": read_datetime(p.get("start"), "Encounter.period.start"),
        "participants": [
            attendee_from_fhir(x, f"Encounter.participant[{i}]") for i, x in enumerate(encounter.get("participant", ()))
        ],
    }
    if "end" in p:
        record["end"] = read_datetime(p["end"], "Encounter.period.end")
    episodes = encounter.get("episodeOfCare", ())
    if episodes:
        record["case_id"] = read_ref_id(episodes[0], "EpisodeOfCare", "Encounter.episodeOfCare[0]")
    locations = encounter.get("location", ())
    if locations:
        record["place"] = locations[0].get("location", {}).get("display")
    for observation in of_type(resources, "Observation"):
        if has_code(observation.get("code"), ObservationCode.YOUNG_PERSONS_VIEWS) and (
            observation.get("encounter", {}).get("reference") == f"Encounter/{cid}"
        ):
            record["views"] = observation.get("valueString")
    try:
        return Contact.model_validate(record)
    except ValidationError as exc:
        raise NotOurShape("Encounter", str(exc)) from None


def _status(encounter: Resource) -> MeetingStatus:
    try:
        return MeetingStatus(str(encounter.get("status")))
    except ValueError:
        raise NotOurShape(
            "Encounter.status", f"{encounter.get('status')!r} is not planned, finished or cancelled"
        ) from None
