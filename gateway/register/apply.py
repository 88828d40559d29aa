"""The register rules applied to domain writes, inside the write's transaction.

:class:`RegisterRules` is the domain service's ``after_write`` hook: after a record's resources are stored (and
before the transaction commits), it turns the change into the rules' events, reads what the events need (the
person's rule Tasks, the last community C(E)TR, the case a contact belongs to), and writes the Tasks the rules raise
or close. A rule that refuses (a rating below the post-discharge hold) raises ImpossibleTransition: the API answers
409 and the whole write is rolled back.

Events, by record:

- register entry: each rating decision this write added → ``RatingChanged`` (after the discharge-hold check);
- keyworking case: a new phase history → ``CaseMoved``;
- C(E)TR or LAEP meeting: newly finished → ``ReviewHeld``;
- contact: a new contact on a case → ``ContactMade``.

Whether a person is an adult (a CTR rather than a C(E)TR) needs their EHCP status, which the gateway does not hold
yet: everyone on the register is treated as a child or young person (C(E)TR cadences), as keyworking is for 0-25.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import orjson

from gateway.domain.gather import gather
from gateway.errors import Gone, NotFound
from gateway.register import tasks as rule_tasks
from gateway.register.config import DEFAULT_RULES, RulesConfig
from gateway.register.outcomes import Outcome, RuleTask, TaskStatus
from gateway.register.rules import (
    CaseMoved,
    ContactMade,
    RatingChanged,
    ReviewHeld,
    check_discharge_hold,
    on_case_moved,
    on_contact_made,
    on_rating_changed,
    on_review_held,
)
from gateway.store.repository import FhirRepository
from mappings.keyworking import urls
from mappings.keyworking.errors import NotOurShape
from mappings.keyworking.mapping import from_fhir
from mappings.keyworking.records import (
    Contact,
    KeyworkingCase,
    MeetingStatus,
    Record,
    RegisterEntry,
    ReviewMeeting,
)
from mappings.keyworking.terminology import KeyworkingPhase, ReviewType

Resource = dict[str, Any]


class RegisterRules:
    """The rules with one ICS's configuration, as the domain service's ``after_write`` hook."""

    def __init__(self, config: RulesConfig = DEFAULT_RULES) -> None:
        self.config = config

    def concerns(self, before: Record | None, after: Record) -> bool:
        """Whether the write can raise or close a rule Task: a new rating decision, a case's new phase history, a
        meeting newly finished, a new contact on a case. Every other write skips the rules (and their reads)."""
        if isinstance(after, RegisterEntry):
            return len(after.ratings) > (len(before.ratings) if isinstance(before, RegisterEntry) else 0)
        if isinstance(after, KeyworkingCase):
            return not isinstance(before, KeyworkingCase) or before.history != after.history
        if isinstance(after, ReviewMeeting):
            was_held = isinstance(before, ReviewMeeting) and before.status is MeetingStatus.FINISHED
            return after.status is MeetingStatus.FINISHED and not was_held
        if isinstance(after, Contact):
            return before is None and after.case_id is not None
        return False

    async def __call__(self, repo: FhirRepository, before: Record | None, after: Record) -> None:
        if not self.concerns(before, after):
            return
        if isinstance(after, RegisterEntry):
            await self._register_entry(repo, before if isinstance(before, RegisterEntry) else None, after)
        elif isinstance(after, KeyworkingCase):
            known, stored = await _rule_tasks(repo, after.person_id)
            event = CaseMoved(before if isinstance(before, KeyworkingCase) else None, after, _now(), known)
            await _write(repo, on_case_moved(event, self.config), stored)
        elif isinstance(after, ReviewMeeting):
            known, stored = await _rule_tasks(repo, after.person_id)
            held = ReviewHeld.from_meeting(after, tasks=known, still_inpatient=await _inpatient(repo, after))
            if held is not None:
                await _write(repo, on_review_held(held, self.config), stored)
        elif isinstance(after, Contact) and after.case_id is not None:
            case = await _case(repo, after.case_id)
            if case is not None and case.phase is KeyworkingPhase.MONITORING:  # only monitoring keeps a cadence
                known, stored = await _rule_tasks(repo, after.person_id)
                await _write(repo, on_contact_made(ContactMade(after, case, known), self.config), stored)

    async def _register_entry(self, repo: FhirRepository, before: RegisterEntry | None, after: RegisterEntry) -> None:
        already = len(before.ratings) if before is not None else 0
        if len(after.ratings) <= already:
            return
        for n in range(already + 1, len(after.ratings) + 1):  # refuse before reading anything else
            check_discharge_hold(after.model_copy(update={"ratings": after.ratings[: n - 1]}), after.ratings[n - 1])
        community = await _last_community_cetr(repo, after.person_id)
        known, stored = await _rule_tasks(repo, after.person_id)
        total = Outcome()
        for n in range(already + 1, len(after.ratings) + 1):
            so_far = after.model_copy(update={"ratings": after.ratings[:n]})
            event = RatingChanged.latest(so_far, community_cetr_on=community, tasks=known)
            outcome = on_rating_changed(event, self.config)
            total = total + outcome
            # What this decision raised and closed is what the next one sees.
            closed = {c.task_id: c.status for c in outcome.close_tasks}
            known = (
                tuple(
                    t.model_copy(update={"status": TaskStatus(closed[t.id].value)}) if t.id in closed else t
                    for t in known
                )
                + outcome.raise_tasks
            )
            stored |= {t.id: rule_tasks.to_fhir(t) for t in outcome.raise_tasks}
        await _write(repo, total, stored)


def _now() -> datetime:
    return datetime.now(UTC)


async def _search(repo: FhirRepository, res_type: str, params: list[tuple[str, str]]) -> list[Resource]:
    result = await repo.search(res_type, [*params, ("_count", "500")])
    return [orjson.loads(r.content) for r in result.matches if r.content is not None]


async def _rule_tasks(repo: FhirRepository, person_id: str) -> tuple[tuple[RuleTask, ...], dict[str, Resource]]:
    """The person's rule Tasks (as the rules read them) and their stored resources by id (to close them)."""
    stored = {
        str(t["id"]): t
        for t in await _search(repo, "Task", [("subject", f"Patient/{person_id}")])
        if rule_tasks.is_rule_task(t)
    }
    return tuple(rule_tasks.from_fhir(t) for t in stored.values()), stored


async def _last_community_cetr(repo: FhirRepository, person_id: str) -> date | None:
    meetings = await _search(
        repo,
        "Encounter",
        [
            ("subject", f"Patient/{person_id}"),
            ("type", f"{urls.CS_REVIEW_TYPE}|{ReviewType.COMMUNITY_CETR.value}"),
            ("status", "finished"),
        ],
    )
    days = [date.fromisoformat(str(m["period"]["start"])[:10]) for m in meetings if "start" in m.get("period", {})]
    return max(days, default=None)


async def _case(repo: FhirRepository, case_id: str) -> KeyworkingCase | None:
    try:
        return from_fhir(KeyworkingCase, await gather(repo, KeyworkingCase, case_id))
    except (NotFound, Gone, NotOurShape):  # a contact naming a case that is gone or not a case: no cadence to keep
        return None


async def _inpatient(repo: FhirRepository, meeting: ReviewMeeting) -> bool:
    """Whether the person is still in hospital after the meeting: their register entry's current rating is blue."""
    if meeting.register_entry_id is None:
        return meeting.meeting_type is ReviewType.INPATIENT_CETR
    try:
        entry = from_fhir(RegisterEntry, await gather(repo, RegisterEntry, meeting.register_entry_id))
    except (NotFound, Gone, NotOurShape):  # no such entry: judge by the meeting itself
        return meeting.meeting_type is ReviewType.INPATIENT_CETR
    current = entry.current_rating
    return current is not None and current.rating.value == "blue"


async def _write(repo: FhirRepository, outcome: Outcome, stored: dict[str, Resource]) -> None:
    """Store the Tasks the rules raised and close the ones they closed, in one batched write."""
    writes: dict[str, Resource] = {task.id: rule_tasks.to_fhir(task) for task in outcome.raise_tasks}
    for closure in outcome.close_tasks:
        current = writes.get(closure.task_id) or stored.get(closure.task_id)
        if current is None:
            continue
        closed = rule_tasks.closed(current, closure)
        closed.pop("meta", None)
        writes[closure.task_id] = closed
    if not writes:
        return
    for resource in writes.values():
        repo.check(resource, "Task")  # update_many does not validate
    await repo.update_many([(resource, task_id) for task_id, resource in writes.items()])
