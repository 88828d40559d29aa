"""RegisterEntry ⇄ EpisodeOfCare (DynamicSupportRegisterEntry) + Flag (current rating) + Observation per rating
decision + Consent.

- The entry's five statuses map one to one onto EpisodeOfCare.status: referral → ``waitlist`` (waiting to be
  screened), screening → ``planned`` (FHIR: "the organization may perform assessments to determine if the patient
  is eligible"), on register → ``active``, declined → ``cancelled``, closed → ``finished``.
- Every rating decision is an Observation (``<id>-rating-<n>``, n from 1, oldest first): the rating as value, the
  reason as a note, the author as performer, the time as effective, the next review date in our extension, and
  ``focus`` the EpisodeOfCare. That is the full history the domain API reads back.
- The current rating is also a Flag (``<id>-rating``) for EHR banners; it is derived and ignored on reading.
- Consent (or the best-interests decision) is ``<id>-consent``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from mappings.keyworking import consent as consent_mapping
from mappings.keyworking import urls
from mappings.keyworking.elements import (
    Resource,
    agency_ref,
    codeable,
    ext,
    ext_value,
    fhir_date,
    fhir_datetime,
    has_code,
    meta,
    of_type,
    person_ref,
    read_agency,
    read_code,
    read_date,
    read_datetime,
    read_person,
    read_ref_id,
    ref,
    require_id,
    the_one,
)
from mappings.keyworking.errors import NotOurShape
from mappings.keyworking.records import RatingChange, RegisterEntry
from mappings.keyworking.terminology import ConsentCategory, DsrRating, EpisodeType, ObservationCode, RegisterStatus

FHIR_STATUS: dict[RegisterStatus, str] = {
    RegisterStatus.REFERRAL: "waitlist",
    RegisterStatus.SCREENING: "planned",
    RegisterStatus.ON_REGISTER: "active",
    RegisterStatus.DECLINED: "cancelled",
    RegisterStatus.CLOSED: "finished",
}
_FROM_FHIR_STATUS = {v: k for k, v in FHIR_STATUS.items()}
_ENDED = (RegisterStatus.DECLINED, RegisterStatus.CLOSED)


def flag_id(entry_id: str) -> str:
    return f"{entry_id}-rating"


def rating_id(entry_id: str, n: int) -> str:
    """The Observation id of the n-th rating decision (1 for the first)."""
    return f"{entry_id}-rating-{n}"


def consent_id(entry_id: str) -> str:
    return f"{entry_id}-consent"


def to_fhir(entry: RegisterEntry) -> list[Resource]:
    """The EpisodeOfCare first, then the Flag (if rated), the Observations oldest first, and the Consent."""
    eid = require_id(entry.id, "register entry")
    out = [_episode(entry, eid)]
    current = entry.current_rating
    if current is not None:
        out.append(_flag(entry, eid, current))
    out += [_observation(change, eid, entry.person_id, n) for n, change in enumerate(entry.ratings, start=1)]
    if entry.consent is not None:
        out.append(
            consent_mapping.to_fhir(
                entry.consent,
                consent_id=consent_id(eid),
                person_id=entry.person_id,
                category=ConsentCategory.DSR_INCLUSION,
            )
        )
    return out


def _episode(entry: RegisterEntry, eid: str) -> Resource:
    episode: Resource = {"resourceType": "EpisodeOfCare", "id": eid, "meta": meta(urls.REGISTER_ENTRY)}
    current = entry.current_rating
    if current is not None and entry.status not in _ENDED:
        episode["extension"] = [ext(urls.EXT_NEXT_REVIEW_DATE, "valueDate", fhir_date(current.next_review))]
    episode["status"] = FHIR_STATUS[entry.status]
    episode["type"] = [codeable(EpisodeType.DSR)]
    episode["patient"] = ref("Patient", entry.person_id)
    if entry.managing_organisation is not None:
        episode["managingOrganization"] = agency_ref(entry.managing_organisation)
    period = {"start": fhir_date(entry.referred_on)}
    if entry.ended_on is not None:
        period["end"] = fhir_date(entry.ended_on)
    episode["period"] = period
    return episode


def _flag(entry: RegisterEntry, eid: str, current: RatingChange) -> Resource:
    period = {"start": fhir_datetime(current.at)}
    if entry.ended_on is not None:
        # Both ends as dates: a dateTime start and a date end of the same day do not compare (per-1 would fail).
        period = {"start": fhir_date(current.at.date()), "end": fhir_date(entry.ended_on)}
    return {
        "resourceType": "Flag",
        "id": flag_id(eid),
        "meta": meta(urls.REGISTER_RATING_FLAG),
        "extension": [ext(urls.EXT_NEXT_REVIEW_DATE, "valueDate", fhir_date(current.next_review))],
        "status": "inactive" if entry.status in _ENDED else "active",
        "code": codeable(current.rating),
        "subject": ref("Patient", entry.person_id),
        "period": period,
        "author": person_ref(current.author),
    }


def _observation(change: RatingChange, eid: str, person_id: str, n: int) -> Resource:
    return {
        "resourceType": "Observation",
        "id": rating_id(eid, n),
        "meta": meta(urls.UKCORE_OBSERVATION),
        "extension": [ext(urls.EXT_NEXT_REVIEW_DATE, "valueDate", fhir_date(change.next_review))],
        "status": "final",
        "code": codeable(ObservationCode.DSR_RATING),
        "subject": ref("Patient", person_id),
        "focus": [ref("EpisodeOfCare", eid)],
        "effectiveDateTime": fhir_datetime(change.at),
        "performer": [person_ref(change.author)],
        "valueCodeableConcept": codeable(change.rating),
        "note": [{"text": change.reason}],
    }


def from_fhir(resources: Iterable[Resource]) -> RegisterEntry:
    """The RegisterEntry an EpisodeOfCare, its rating Observations and its Consent describe (the Flag is derived)."""
    resources = list(resources)
    episode = the_one(resources, "EpisodeOfCare")
    if not any(has_code(t, EpisodeType.DSR) for t in episode.get("type", ())):
        raise NotOurShape("EpisodeOfCare.type", "is not a Dynamic Support Register entry")
    eid = str(episode.get("id"))
    status = _FROM_FHIR_STATUS.get(episode.get("status", ""))
    if status is None:
        raise NotOurShape("EpisodeOfCare.status", f"{episode.get('status')!r} is not a register status")
    period = episode.get("period", {})
    record: dict[str, Any] = {
        "id": eid,
        "person_id": read_ref_id(episode.get("patient"), "Patient", "EpisodeOfCare.patient"),
        "status": status,
        "referred_on": read_date(period.get("start"), "EpisodeOfCare.period.start"),
    }
    if "end" in period:
        record["ended_on"] = read_date(period["end"], "EpisodeOfCare.period.end")
    if "managingOrganization" in episode:
        record["managing_organisation"] = read_agency(
            episode["managingOrganization"], "EpisodeOfCare.managingOrganization"
        )
    ratings = [o for o in of_type(resources, "Observation") if _is_rating_of(o, eid)]
    record["ratings"] = [_rating(o) for o in sorted(ratings, key=lambda o: _rating_order(o, eid))]
    for consent in of_type(resources, "Consent"):
        if consent_mapping.category_of(consent) is ConsentCategory.DSR_INCLUSION:
            record["consent"] = consent_mapping.from_fhir(consent)
    try:
        return RegisterEntry.model_validate(record)
    except ValidationError as exc:
        raise NotOurShape("EpisodeOfCare", str(exc)) from None


def _is_rating_of(observation: Resource, eid: str) -> bool:
    return has_code(observation.get("code"), ObservationCode.DSR_RATING) and any(
        f.get("reference") == f"EpisodeOfCare/{eid}" for f in observation.get("focus", ())
    )


def _rating_order(observation: Resource, eid: str) -> tuple[float, int]:
    match = re.fullmatch(re.escape(eid) + r"-rating-([0-9]+)", str(observation.get("id")))
    n = int(match.group(1)) if match else 1 << 30
    return (read_datetime(observation.get("effectiveDateTime"), "Observation.effectiveDateTime").timestamp(), n)


def _rating(observation: Resource) -> dict[str, Any]:
    path = f"Observation/{observation.get('id')}"
    performers = observation.get("performer", ())
    notes = observation.get("note", ())
    if len(performers) != 1 or len(notes) != 1:
        raise NotOurShape(path, "a rating decision has exactly one performer and one note (the reason)")
    return {
        "rating": read_code(observation.get("valueCodeableConcept"), DsrRating, f"{path}.valueCodeableConcept"),
        "reason": notes[0].get("text"),
        "author": read_person(performers[0], f"{path}.performer[0]"),
        "at": read_datetime(observation.get("effectiveDateTime"), f"{path}.effectiveDateTime"),
        "next_review": read_date(
            ext_value(observation, urls.EXT_NEXT_REVIEW_DATE, "valueDate"), f"{path}.extension(next-review-date)"
        ),
    }
