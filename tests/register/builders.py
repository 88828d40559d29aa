"""Small builders for the register rule tests: records with concrete dates, in UTC unless a test says otherwise."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from mappings.keyworking import lifecycle
from mappings.keyworking.records import Contact, KeyworkingCase, PersonRef, RatingChange, RegisterEntry
from mappings.keyworking.terminology import DsrRating, RegisterStatus, ServiceModel

AUTHOR = PersonRef(name="Duty Commissioner", reference="Practitioner/commissioner-1")
KEYWORKER = PersonRef(name="Key Worker", reference="Practitioner/keyworker-1")


def at(day: str, hour: int = 10) -> datetime:
    return datetime.combine(date.fromisoformat(day), time(hour), tzinfo=UTC)


def rating(value: DsrRating, day: str) -> RatingChange:
    when = at(day)
    return RatingChange(
        rating=value, reason="Reviewed at the register meeting", author=AUTHOR, at=when, next_review=when.date()
    )


def entry(*ratings: tuple[DsrRating, str], entry_id: str = "dsr-1") -> RegisterEntry:
    """A register entry with these (rating, day) decisions, oldest first."""
    changes = [rating(r, d) for r, d in ratings]
    return RegisterEntry(
        id=entry_id,
        person_id="person-1",
        status=RegisterStatus.ON_REGISTER,
        referred_on=date(2026, 1, 5),
        ratings=tuple(changes),
    )


def new_case(start: str = "2026-01-05", model: ServiceModel = ServiceModel.NHS_LD_AUTISM) -> KeyworkingCase:
    return KeyworkingCase.model_validate(
        {
            "id": "case-1",
            "person_id": "person-1",
            "service_model": model,
            "history": [{"phase": "referred", "start": start}],
        }
    )


def allocated(on: str = "2026-01-12") -> KeyworkingCase:
    return lifecycle.allocate(new_case(), [KEYWORKER], date.fromisoformat(on))


def contact(day: str, contact_id: str = "contact-1", **extra: Any) -> Contact:
    return Contact.model_validate(
        {
            "id": contact_id,
            "person_id": "person-1",
            "case_id": "case-1",
            "contact_type": "monitoring-call",
            "start": at(day).isoformat(),
            **extra,
        }
    )
