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

import uuid
from collections.abc import Callable
from datetime import timedelta

from gateway.domain.gather import read_optional, search
from gateway.domain.service import KeyworkingRecords
from gateway.errors import NotFound
from gateway.hl7v2.alerts import AlertSettings, HospitalEvent, decide
from gateway.hl7v2.decoding import decode_message
from gateway.hl7v2.log import StoredMessage
from gateway.register.apply import RegisterRules
from gateway.store.repository import FhirRepository
from mappings.hl7v2 import systems
from mappings.hl7v2.tokenizer import Message, parse, peek
from mappings.hl7v2.visit import (
    MESSAGE_SYSTEM,
    PersonFacts,
    Visit,
    encounter_for,
    encounter_id,
    provenance_for,
    read_person_facts,
    read_visit,
)
from mappings.identifiers import NHS_NUMBER_SYSTEM
from mappings.keyworking import lifecycle, urls
from mappings.keyworking.records import NhsNumberVerification, Person, PersonRef, RatingChange, RegisterEntry
from mappings.keyworking.register import flag_id, rating_id
from mappings.keyworking.terminology import EpisodeType
from mappings.provenance import Author, Origin, Source


def hospital_event(message: Message) -> HospitalEvent:
    """The facts the alert rules need: those of the visit the message describes (read once, by ``read_visit``)."""
    return event_of(read_visit(message))


def event_of(visit: Visit) -> HospitalEvent:
    location = visit.location
    return HospitalEvent(
        trigger=visit.trigger,
        control_id=visit.control_id,
        sending_facility=visit.sending_facility,
        patient_class=visit.patient_class,
        point_of_care=location.point_of_care if location else "",
        facility=location.facility if location else "",
        service=visit.service,
        occurred_at=visit.occurred_at,
    )


class MergeNeedsReview(Exception):
    """A merge the gateway will not make by itself; recorded on the message for a person to review."""


class Hl7Processor:
    """Turns stored cohort messages into register alerts (and, with the ADT mapping, Patient/Encounter changes)."""

    def __init__(self, repo: FhirRepository, rules: RegisterRules, settings: AlertSettings) -> None:
        self.repo = repo
        self.rules = rules
        self.settings = settings

    async def __call__(self, message: StoredMessage) -> None:
        text = decode_message(message.raw)
        nhs_number = peek(text).nhs_number
        if nhs_number is None:
            return
        parsed = parse(text)
        visit = read_visit(parsed)
        event = event_of(visit)
        facts = read_person_facts(parsed)
        for patient in await search(self.repo, "Patient", [("identifier", f"{NHS_NUMBER_SYSTEM}|{nhs_number}")]):
            person_id = str(patient["id"])
            if visit.trigger == "A40":
                await self._check_merge(person_id, facts)
            await self._update_person(person_id, facts, visit)
            await self._record_visit(person_id, visit)
            if self.settings.configured:
                await self._alert(person_id, event, visit)

    async def _check_merge(self, person_id: str, facts: PersonFacts) -> None:
        """A merge of two people the gateway holds is never done automatically (a wrong-person hazard): the message
        fails with the reason, for someone to review in the message log and merge by hand."""
        for prior in facts.prior_nhs_numbers:
            for other in await search(self.repo, "Patient", [("identifier", f"{NHS_NUMBER_SYSTEM}|{prior}")]):
                if str(other["id"]) != person_id:
                    raise MergeNeedsReview(
                        f"A40 merges Patient/{other['id']} into Patient/{person_id}: both are held by the gateway; "
                        "review and merge by hand"
                    )

    async def _update_person(self, person_id: str, facts: PersonFacts, visit: Visit) -> None:
        """The hospital's NHS number verification status and GP practice onto the person's record (only those),
        with a Provenance naming the sending system and the message."""
        if facts.nhs_number_verification is None and facts.gp_practice is None:
            return
        service = KeyworkingRecords(self.repo, origin=sender_origin(visit))
        try:
            person = await service.get(Person, person_id)
        except NotFound:
            return
        update: dict[str, object] = {}
        if (
            facts.nhs_number_verification is not None
            and person.nhs_number_verification != facts.nhs_number_verification
        ):
            update["nhs_number_verification"] = NhsNumberVerification(facts.nhs_number_verification)
        if facts.gp_practice is not None and person.gp_practice != facts.gp_practice:
            update["gp_practice"] = facts.gp_practice
        if update:
            await service.put(person.model_copy(update=update))

    async def _record_visit(self, person_id: str, visit: Visit) -> None:
        """The hospital visit as an Encounter, with a Provenance naming the sender, in one transaction."""
        current = await read_optional(self.repo, "Encounter", encounter_id(visit))
        encounter = encounter_for(visit, current, patient_id=person_id)
        if encounter is None:
            return
        key = f"{visit.sending_facility}|{visit.control_id}|{person_id}"
        provenance_id = "hl7-" + str(uuid.uuid5(uuid.NAMESPACE_URL, MESSAGE_SYSTEM + key))
        async with self.repo.transaction() as tx:
            written = await tx.update("Encounter", str(encounter["id"]), encounter)
            assert written.resource is not None
            targets = [f"Encounter/{encounter['id']}/_history/{written.resource.version_id}"]
            await tx.update("Provenance", provenance_id, provenance_for(visit, targets, provenance_id=provenance_id))

    async def _alert(self, person_id: str, event: HospitalEvent, visit: Visit) -> None:
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
            saved = await service.change(RegisterEntry, str(entry.id), _rating_step(change))
            # Who said so: the rating decision and the Flag, with the message that caused them.
            rating = f"Observation/{rating_id(str(entry.id), len(saved.record.ratings))}"
            key = f"{visit.sending_facility}|{visit.control_id}|{entry.id}|rating"
            provenance_id = "hl7-" + str(uuid.uuid5(uuid.NAMESPACE_URL, MESSAGE_SYSTEM + key))
            targets = [rating, f"Flag/{flag_id(str(entry.id))}"]
            await self.repo.update(
                "Provenance", provenance_id, provenance_for(visit, targets, provenance_id=provenance_id)
            )


def sender_origin(visit: Visit) -> Origin:
    """The sending system (MSH-3, for the facility in MSH-4) and the message (MSH-10), as a write's Origin."""
    facility = visit.sending_facility
    application = visit.sending_application or "unknown system"
    author = Author(
        systems.per_sender(systems.APPLICATION_PREFIX, facility),
        application,
        display=f"{application} at {facility or 'an unnamed facility'}",
        organisation=facility or None,
    )
    message = Source(f"HL7 v2 ADT^{visit.trigger}", MESSAGE_SYSTEM + (facility or "unknown"), visit.control_id)
    return Origin(author, (message,))


def _rating_step(change: RatingChange) -> Callable[[RegisterEntry], RegisterEntry]:
    def step(entry: RegisterEntry) -> RegisterEntry:
        return lifecycle.rate(entry, change)

    return step
