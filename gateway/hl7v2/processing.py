"""Processing stored cohort messages (in a Celery worker): find the young person, raise the register alert.

The listener only stores and ACKs. :class:`Hl7Processor` is the :class:`gateway.hl7v2.log.MessageHandler` the
``kwg.process_hl7`` task runs over the message log, oldest first, one message at a time (a lane lease keeps it to
one worker, so a person's admissions and discharges are applied in the order they were received). For each message
it finds the gateway's people with that NHS number and, for each of their active register entries, records the
rating the alert rules call for (:mod:`gateway.hl7v2.alerts`) through the domain service, so the register rules run
in the same transaction (a blue rating raises the post-admission C(E)TR Task). A failure is recorded on the message
for a reprocess after a fix; the next message goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.domain.gather import search
from gateway.domain.service import KeyworkingRecords
from gateway.hl7v2.alerts import AlertSettings, HospitalEvent, decide
from gateway.hl7v2.decoding import decode_message
from gateway.hl7v2.log import StoredMessage
from gateway.register.apply import RegisterRules
from gateway.store.repository import FhirRepository
from mappings.hl7v2.tokenizer import HL7ParseError, Message, parse, peek
from mappings.identifiers import NHS_NUMBER_SYSTEM
from mappings.keyworking import lifecycle, urls
from mappings.keyworking.records import PersonRef, RatingChange, RegisterEntry
from mappings.keyworking.terminology import EpisodeType

LONDON = ZoneInfo("Europe/London")


def hl7_time(text: str, location: str) -> datetime | None:
    """An HL7 DTM (YYYYMMDD[HH[MM[SS[.S...]]]][+/-ZZZZ]); without an offset it is London time (BST or GMT)."""
    if not text:
        return None
    body, offset = text, None
    for sign in ("+", "-"):
        if sign in text[8:]:
            cut = text.index(sign, 8)
            body, offset = text[:cut], text[cut:]
    digits = body.split(".")[0]
    if len(digits) < 8 or not digits.isdigit():
        raise HL7ParseError("is not an HL7 date/time", location)
    parts = [int(digits[0:4]), int(digits[4:6]), int(digits[6:8])]
    parts += [int(digits[i : i + 2]) if len(digits) > i else 0 for i in (8, 10, 12)]
    try:
        naive = datetime(parts[0], parts[1], parts[2], parts[3], parts[4], parts[5])
    except ValueError as exc:
        raise HL7ParseError(f"is not a valid date/time ({exc})", location) from None
    if offset is None:
        return naive.replace(tzinfo=LONDON).astimezone(UTC)
    if len(offset) != 5 or not offset[1:].isdigit():
        raise HL7ParseError("has a malformed time-zone offset", location)
    minutes = int(offset[1:3]) * 60 + int(offset[3:5])
    delta = timedelta(minutes=minutes if offset[0] == "+" else -minutes)
    return (naive - delta).replace(tzinfo=UTC)


def hospital_event(message: Message) -> HospitalEvent:
    """The facts the alert rules need, read from MSH, EVN and PV1."""
    msh, evn, pv1 = message.msh, message.segment("EVN"), message.segment("PV1")
    trigger = msh.component(9, 2) or (evn.value(1) if evn else "")
    occurred = None
    if evn is not None:
        occurred = hl7_time(evn.value(6), "EVN-6") or hl7_time(evn.value(2), "EVN-2")
    if occurred is None and pv1 is not None:
        field, location = (45, "PV1-45") if trigger == "A03" else (44, "PV1-44")
        occurred = hl7_time(pv1.value(field), location)
    occurred = occurred or hl7_time(msh.value(7), "MSH-7") or datetime.now(UTC)
    return HospitalEvent(
        trigger=trigger,
        control_id=msh.value(10),
        sending_facility=msh.value(4),
        patient_class=pv1.value(2) if pv1 else "",
        point_of_care=pv1.component(3, 1) if pv1 else "",
        facility=pv1.component(3, 4) if pv1 else "",
        service=pv1.value(10) if pv1 else "",
        occurred_at=occurred,
    )


class Hl7Processor:
    """Turns stored cohort messages into register alerts (and, with the ADT mapping, Patient/Encounter changes)."""

    def __init__(self, repo: FhirRepository, rules: RegisterRules, settings: AlertSettings) -> None:
        self.repo = repo
        self.rules = rules
        self.settings = settings

    async def __call__(self, message: StoredMessage) -> None:
        text = decode_message(message.raw)
        nhs_number = peek(text).nhs_number
        if nhs_number is None or not self.settings.configured:
            return
        event = hospital_event(parse(text))
        for patient in await search(self.repo, "Patient", [("identifier", f"{NHS_NUMBER_SYSTEM}|{nhs_number}")]):
            await self._alert(str(patient["id"]), event)

    async def _alert(self, person_id: str, event: HospitalEvent) -> None:
        register = f"{urls.CS_EPISODE_TYPE}|{EpisodeType.DSR.value}"
        entries = await search(
            self.repo,
            "EpisodeOfCare",
            [("patient", f"Patient/{person_id}"), ("type", register), ("status", "active")],
        )
        service = KeyworkingRecords(self.repo, after_write=self.rules)
        for entry_resource in entries:
            entry = await service.get(RegisterEntry, str(entry_resource["id"]))
            decision = decide(event, entry.ratings, self.settings)
            if decision is None:
                continue
            last = entry.current_rating
            at = max(decision.at, last.at) if last is not None else decision.at
            change = RatingChange(
                rating=decision.rating,
                reason=decision.reason,
                author=PersonRef(name=f"Hospital feed {event.sending_facility}"),
                at=at,
                next_review=(at + timedelta(days=decision.next_review_days)).date(),
            )
            await service.change(RegisterEntry, str(entry.id), _rating_step(change))


def _rating_step(change: RatingChange) -> Callable[[RegisterEntry], RegisterEntry]:
    def step(entry: RegisterEntry) -> RegisterEntry:
        return lifecycle.rate(entry, change)

    return step
