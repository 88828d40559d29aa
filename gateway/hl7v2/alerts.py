"""Register alerts from hospital events: an admission of a cohort member to a mental-health inpatient setting rates
their register entry blue (which starts the post-admission C(E)TR clock through the register rules), a discharge
records the configured post-discharge rating, and cancels undo what the cancelled event did.

Which settings count as mental-health inpatient settings is configuration (by ward or point of care in PV1-3, by
hospital service in PV1-10, or by the sending organisation's ODS code in MSH-4): one trust's feed carries every
ward. Pure: :func:`decide` takes the facts of a message and the entry's rating history and says what to record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from mappings.keyworking.records import RatingChange
from mappings.keyworking.terminology import DsrRating


class Hl7Event(StrEnum):
    ADMIT = "A01"
    TRANSFER = "A02"
    DISCHARGE = "A03"
    CANCEL_ADMIT = "A11"
    CANCEL_TRANSFER = "A12"
    CANCEL_DISCHARGE = "A13"


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """What counts as a mental-health inpatient setting, and what to record on discharge."""

    wards: frozenset[str] = frozenset()  # PV1-3.1 point of care (or PV1-3.4 facility) codes
    services: frozenset[str] = frozenset()  # PV1-10 hospital service codes
    senders: frozenset[str] = frozenset()  # MSH-4 sending facility ODS codes (a mental-health trust's feed)
    discharge_rating: DsrRating = DsrRating.RED
    discharge_review_days: int = 14

    @property
    def configured(self) -> bool:
        return bool(self.wards or self.services or self.senders)


@dataclass(frozen=True, slots=True)
class HospitalEvent:
    """The facts of an ADT message an alert needs."""

    trigger: str
    control_id: str
    sending_facility: str
    patient_class: str  # PV1-2: I inpatient, O outpatient, E emergency...
    point_of_care: str  # PV1-3.1
    facility: str  # PV1-3.4
    service: str  # PV1-10
    occurred_at: datetime  # when it happened (EVN-2, PV1-44/45, or MSH-7)

    def in_mental_health_setting(self, settings: AlertSettings) -> bool:
        if self.patient_class.upper() != "I":
            return False
        return (
            self.point_of_care in settings.wards
            or (bool(self.facility) and self.facility in settings.wards)
            or self.service in settings.services
            or self.sending_facility in settings.senders
        )


@dataclass(frozen=True, slots=True)
class RatingToRecord:
    rating: DsrRating
    reason: str
    at: datetime
    next_review_days: int


def decide(event: HospitalEvent, ratings: tuple[RatingChange, ...], settings: AlertSettings) -> RatingToRecord | None:
    """The rating decision this event calls for, or None (not a mental-health setting, or nothing changes)."""
    current = ratings[-1].rating if ratings else None
    where = event.point_of_care or event.facility or event.sending_facility
    source = f"HL7 {event.trigger} from {event.sending_facility} ({event.control_id})"
    if event.trigger in (Hl7Event.ADMIT, Hl7Event.TRANSFER, Hl7Event.CANCEL_DISCHARGE):
        if current is DsrRating.BLUE or not event.in_mental_health_setting(settings):
            return None
        what = "Admitted to" if event.trigger != Hl7Event.CANCEL_DISCHARGE else "Discharge cancelled; still in"
        reason = f"{what} a mental-health inpatient setting ({where}). {source}."
        return RatingToRecord(DsrRating.BLUE, reason, event.occurred_at, 7)
    if event.trigger == Hl7Event.DISCHARGE:
        if current is not DsrRating.BLUE or not event.in_mental_health_setting(settings):
            return None
        return RatingToRecord(
            settings.discharge_rating,
            f"Discharged from a mental-health inpatient setting ({where}). {source}.",
            event.occurred_at,
            settings.discharge_review_days,
        )
    if event.trigger == Hl7Event.CANCEL_ADMIT:
        if current is not DsrRating.BLUE or len(ratings) < 2:
            return None
        before = ratings[-2].rating
        reason = f"Admission cancelled; the rating before it restored. {source}."
        return RatingToRecord(before, reason, event.occurred_at, 7)
    return None
