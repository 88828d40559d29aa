"""What the console pages show, gathered through the existing services: the delivery rows
(:mod:`gateway.sync.deliveries`), the HL7 v2 message log (:mod:`gateway.hl7v2.log`) and FHIR searches on the
repository (the keyworking search parameters), each search result passed through the access rules
(:func:`gateway.api.access.visible`) for the signed-in operator. Shaping the answers is pure and tested alone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.api.access import visible
from gateway.auth import Caller
from gateway.console.chart import RatingPoint
from gateway.hl7v2 import log
from gateway.register.overdue import due_date, is_overdue
from gateway.store.repository import FhirRepository
from gateway.store.timeutil import to_instant
from gateway.sync import deliveries
from gateway.sync.destinations import Destination
from gateway.sync.directory import Snapshot
from mappings.keyworking import urls
from mappings.keyworking.elements import Resource
from mappings.keyworking.terminology import DsrRating, ObservationCode, TaskType

PAGE = 500
#: The most resources of one kind a data-quality list reads (pages of PAGE).
MAX_PAGES = 40
OPEN_TASK = "requested,received,accepted,ready,in-progress,on-hold"
RATINGS = tuple(r.value for r in DsrRating)
NO_PLACE = "not recorded"


def instant(us: int | None) -> str:
    return "" if us is None else to_instant(us)[:19].replace("T", " ")


# -- destinations -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DestinationRow:
    name: str
    source: str  # destinations file | API | Subscription/<id>
    connector: str
    recipient: str
    enabled: bool
    health: str  # healthy | failing | dead letters | idle | disabled
    queue_depth: int
    delivered: int
    dead_letters: int
    last_success: str
    error_rate: float


FILE_SOURCE = "destinations file"
API_SOURCE = "API"


def listed(snapshot: Snapshot, file_names: Collection[str]) -> list[tuple[str, Destination]]:
    """Every destination the sync engine delivers to now, with where it was made: those of
    ``KWG_DESTINATIONS_FILE`` first (in the file's order), then those made through the API, then the live FHIR
    Subscriptions' (``subscription-<id>``), each group by name."""
    made = {name: target.subscription_id for name, target in snapshot.subscriptions.items()}
    files = [(FILE_SOURCE, d) for d in snapshot.destinations.values() if d.name in file_names and d.name not in made]
    api = [(API_SOURCE, d) for d in snapshot.destinations.values() if d.name not in file_names and d.name not in made]
    subs = [(f"Subscription/{made[d.name]}", d) for d in snapshot.destinations.values() if d.name in made]
    return [*files, *sorted(api, key=lambda p: p[1].name), *sorted(subs, key=lambda p: p[1].name)]


def health_word(enabled: bool, h: deliveries.DestinationHealth) -> str:
    if not enabled:
        return "disabled"
    if h.attempts_last_hour and h.error_rate >= 0.5:
        return "failing"
    if h.dead:
        return "dead letters"
    if h.attempts_last_hour == 0 and h.pending == 0:
        return "idle"
    return "healthy"


async def destination_rows(
    engine: AsyncEngine, destinations: Sequence[tuple[str, Destination]]
) -> list[DestinationRow]:
    """The health figures of each destination (``(source, destination)`` pairs, as :func:`listed` gives them)."""
    rows = []
    for source, d in destinations:
        h = await deliveries.health(engine, d.name)
        rows.append(
            DestinationRow(
                name=d.name,
                source=source,
                connector=d.connector,
                recipient=d.recipient.value,
                enabled=d.enabled,
                health=health_word(d.enabled, h),
                queue_depth=h.pending,
                delivered=h.delivered,
                dead_letters=h.dead,
                last_success=instant(h.last_success_at),
                error_rate=round(h.error_rate * 100, 1),
            )
        )
    return rows


# -- the message log ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogFilter:
    kind: str = "all"  # all | hl7 | deliveries
    status: str | None = None
    destination: str | None = None
    message_type: str | None = None
    on: date | None = None


@dataclass(frozen=True, slots=True)
class LogRow:
    kind: str  # HL7 v2 | delivery
    id: int
    at: str
    status: str
    message_type: str  # ADT^A01 for HL7; the resource type for a delivery
    source: str  # sending facility, or destination
    detail: str
    replayable: bool


HL7_STATUSES = frozenset({log.RECEIVED, log.PROCESSED, log.FAILED})
DELIVERY_STATUSES = frozenset({deliveries.PENDING, deliveries.DELIVERED, deliveries.DEAD, "withheld"})
#: How many of the newest rows of each log the page shows.
LOG_ROWS = 200
#: How many rows of each log are read to search in.
LOG_SCAN = 5000


def _on_day(us: int, day: date | None) -> bool:
    return day is None or datetime.fromtimestamp(us / 1_000_000, UTC).date() == day


def hl7_rows(messages: Iterable[log.LoggedMessage], wanted: LogFilter) -> list[LogRow]:
    rows = []
    for m in messages:
        if wanted.message_type and m.message_type.upper() != wanted.message_type.upper():
            continue
        if not _on_day(m.received_at, wanted.on):
            continue
        detail = f"ACK {m.ack_code or '-'}; attempts {m.attempts}" + (f"; {m.error}" if m.error else "")
        rows.append(
            LogRow("HL7 v2", m.id, instant(m.received_at), m.status, m.message_type, m.sending_facility, detail, False)
        )
    return rows


def delivery_rows(views: Iterable[deliveries.DeliveryView], wanted: LogFilter) -> list[LogRow]:
    rows = []
    for v in views:
        res_type = v.resource.split("/", 1)[0]
        if wanted.message_type and res_type.lower() != wanted.message_type.lower():
            continue
        if not _on_day(v.created_at, wanted.on):
            continue
        detail = f"{v.method} {v.resource} v{v.version_id}; attempts {v.attempts}"
        if v.last_error:
            detail += f"; {v.last_error}"
        rows.append(
            LogRow(
                "delivery",
                v.id,
                instant(v.created_at),
                v.status,
                res_type,
                v.destination,
                detail,
                v.status == deliveries.DEAD,
            )
        )
    return rows


async def message_log(engine: AsyncEngine, wanted: LogFilter) -> tuple[list[LogRow], list[LogRow]]:
    """The newest HL7 v2 messages and deliveries that match (newest first), each list at most LOG_ROWS long."""
    hl7: list[LogRow] = []
    sent: list[LogRow] = []
    if wanted.kind in ("all", "hl7") and (wanted.status is None or wanted.status in HL7_STATUSES):
        hl7 = hl7_rows(await log.list_messages(engine, status=wanted.status, limit=LOG_SCAN), wanted)
    if wanted.kind in ("all", "deliveries") and (wanted.status is None or wanted.status in DELIVERY_STATUSES):
        views = await deliveries.list_deliveries(
            engine, status=wanted.status, destination=wanted.destination or None, limit=LOG_SCAN
        )
        sent = delivery_rows(views, wanted)
    return hl7[::-1][:LOG_ROWS], sent[::-1][:LOG_ROWS]


# -- register data quality ----------------------------------------------------------------------------------------


async def find(
    request: Request, caller: Caller, repo: FhirRepository, res_type: str, params: Sequence[tuple[str, str]]
) -> tuple[list[Resource], list[Resource]]:
    """Every match (page by page) and every _include, as the operator may see them."""
    matches: list[Resource] = []
    includes: list[Resource] = []
    for page in range(MAX_PAGES):
        result = await repo.search(res_type, [*params, ("_count", str(PAGE)), ("_offset", str(page * PAGE))])
        shown = await visible(request, caller, repo, result)
        matches += [orjson.loads(s.content) for s in shown.matches if s.content is not None]
        includes += [orjson.loads(s.content) for s in shown.includes if s.content is not None]
        if not result.has_next:
            break
    return matches, includes


def person_of(resource: Resource, element: str) -> str | None:
    value = resource.get(element)
    ref = value.get("reference") if isinstance(value, dict) else None
    if isinstance(ref, str) and ref.startswith("Patient/"):
        return ref[len("Patient/") :]
    return None


def place_of(patient: Resource) -> str:
    """The person's place: the local authority of their LA child identifier (DfE LA number)."""
    for identifier in patient.get("identifier", ()):
        system = identifier.get("system") if isinstance(identifier, dict) else None
        if isinstance(system, str) and system.startswith(urls.LA_CHILD_ID_PREFIX):
            return f"LA {system[len(urls.LA_CHILD_ID_PREFIX) :]}"
    return NO_PLACE


def code_in(concept: Any, system: str) -> str | None:
    if not isinstance(concept, dict):
        return None
    for coding in concept.get("coding", ()):
        if isinstance(coding, dict) and coding.get("system") == system:
            code = coding.get("code")
            return code if isinstance(code, str) else None
    return None


@dataclass(frozen=True, slots=True)
class Unallocated:
    person_id: str
    rating: str
    since: str
    place: str


@dataclass(frozen=True, slots=True)
class DueTask:
    person_id: str
    description: str
    due: str
    status: str
    overdue: bool
    owner: str


@dataclass
class QualityReport:
    unallocated: list[Unallocated] = field(default_factory=list)
    overdue_recommendations: list[DueTask] = field(default_factory=list)
    overdue_reviews: list[DueTask] = field(default_factory=list)
    post_admission: list[DueTask] = field(default_factory=list)
    by_rating: dict[str, int] = field(default_factory=dict)
    by_place: dict[str, dict[str, int]] = field(default_factory=dict)


def unallocated(flags: Iterable[Resource], patients: dict[str, Resource], allocated: set[str]) -> list[Unallocated]:
    """Red or blue people with no keyworker allocated on an open keyworking case."""
    out = []
    for flag in flags:
        rating = code_in(flag.get("code"), urls.CS_DSR_RATING)
        person = person_of(flag, "subject")
        if rating not in (DsrRating.RED, DsrRating.BLUE) or person is None or person in allocated:
            continue
        since = str(flag.get("period", {}).get("start", ""))[:10]
        out.append(Unallocated(person, rating, since, place_of(patients.get(person, {}))))
    return sorted(out, key=lambda u: (u.rating != DsrRating.BLUE, u.since, u.person_id))


def allocated_people(cases: Iterable[Resource]) -> set[str]:
    """People with an active episode of care that has a keyworker (careManager)."""
    return {p for c in cases if c.get("careManager") and (p := person_of(c, "patient")) is not None}


def due_tasks(tasks: Iterable[Resource], today: date, *, overdue_only: bool) -> list[DueTask]:
    out = []
    for task in tasks:
        person = person_of(task, "for")
        due = due_date(task)
        if person is None or due is None:
            continue
        late = is_overdue(task, today)
        if overdue_only and not late:
            continue
        owner = task.get("owner", {})
        out.append(
            DueTask(
                person_id=person,
                description=str(task.get("description", "")),
                due=due.isoformat(),
                status=str(task.get("status", "")),
                overdue=late,
                owner=str(owner.get("display", "")) if isinstance(owner, dict) else "",
            )
        )
    return sorted(out, key=lambda t: (t.due, t.person_id))


def counts(
    flags: Iterable[Resource], patients: dict[str, Resource]
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    by_rating: Counter[str] = Counter()
    by_place: dict[str, Counter[str]] = {}
    for flag in flags:
        rating = code_in(flag.get("code"), urls.CS_DSR_RATING)
        person = person_of(flag, "subject")
        if rating is None:
            continue
        by_rating[rating] += 1
        place = place_of(patients.get(person or "", {}))
        by_place.setdefault(place, Counter())[rating] += 1
    return (
        {r: by_rating.get(r, 0) for r in RATINGS},
        {p: {r: c.get(r, 0) for r in RATINGS} for p, c in sorted(by_place.items())},
    )


def task_code(task_type: TaskType) -> str:
    return f"{urls.CS_TASK_TYPE}|{task_type.value}"


async def quality(request: Request, caller: Caller, repo: FhirRepository, today: date) -> QualityReport:
    flags, included = await find(request, caller, repo, "Flag", [("status", "active"), ("_include", "Flag:subject")])
    rating_flags = [f for f in flags if code_in(f.get("code"), urls.CS_DSR_RATING) is not None]
    patients = {str(p.get("id")): p for p in included if p.get("resourceType") == "Patient"}
    cases, _ = await find(request, caller, repo, "EpisodeOfCare", [("status", "active")])
    report = QualityReport()
    report.unallocated = unallocated(rating_flags, patients, allocated_people(cases))
    recommendations, _ = await find(
        request, caller, repo, "Task", [("code", task_code(TaskType.CETR_RECOMMENDATION)), ("status", OPEN_TASK)]
    )
    report.overdue_recommendations = due_tasks(recommendations, today, overdue_only=True)
    reviews, _ = await find(
        request, caller, repo, "Task", [("code", task_code(TaskType.KEYWORKING_REVIEW)), ("status", OPEN_TASK)]
    )
    report.overdue_reviews = due_tasks(reviews, today, overdue_only=True)
    post_admission, _ = await find(
        request, caller, repo, "Task", [("code", task_code(TaskType.POST_ADMISSION_CETR)), ("status", OPEN_TASK)]
    )
    report.post_admission = due_tasks(post_admission, today, overdue_only=False)
    report.by_rating, report.by_place = counts(rating_flags, patients)
    return report


# -- a person's timeline ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    at: str  # ISO date-time as recorded (sorts in date order)
    kind: str  # rating | admission | contact | review
    title: str
    detail: str


def _coding_display(concept: Any) -> str:
    """The display (or code) of a CodeableConcept or a bare Coding (Encounter.class)."""
    if isinstance(concept, dict) and (concept.get("display") or concept.get("code")):
        return str(concept.get("display") or concept.get("code"))
    if isinstance(concept, dict):
        for coding in concept.get("coding", ()):
            if isinstance(coding, dict) and (coding.get("display") or coding.get("code")):
                return str(coding.get("display") or coding.get("code"))
        if concept.get("text"):
            return str(concept["text"])
    return ""


def rating_events(observations: Iterable[Resource]) -> tuple[list[TimelineEvent], list[RatingPoint]]:
    events, points = [], []
    for obs in observations:
        rating = code_in(obs.get("valueCodeableConcept"), urls.CS_DSR_RATING)
        at = str(obs.get("effectiveDateTime", ""))
        if rating is None or len(at) < 10:
            continue
        notes = obs.get("note") or [{}]
        events.append(TimelineEvent(at, "rating", f"Rated {rating}", str(notes[0].get("text", ""))))
        points.append(RatingPoint(date.fromisoformat(at[:10]), rating))
    return events, points


def encounter_event(encounter: Resource) -> TimelineEvent | None:
    period = encounter.get("period", {})
    at = str(period.get("start", "")) if isinstance(period, dict) else ""
    if len(at) < 10:
        return None
    types = encounter.get("type") or [{}]
    status = str(encounter.get("status", ""))
    if code_in(types[0], urls.CS_CONTACT_TYPE):
        kind, title = "contact", f"Contact: {_coding_display(types[0])}"
    elif code_in(types[0], urls.CS_REVIEW_TYPE):
        kind, title = "review", f"Review: {_coding_display(types[0])}"
    else:
        kind, title = "admission", f"Hospital stay ({_coding_display(encounter.get('class')) or 'encounter'})"
    locations = encounter.get("location") or []
    where = ""
    if locations and isinstance(locations[0], dict):
        where = str(locations[0].get("location", {}).get("display", ""))
    detail = f"status {status}" + (f"; {where}" if where else "")
    end = str(period.get("end", "")) if isinstance(period, dict) else ""
    if end:
        detail += f"; until {end[:10]}"
    return TimelineEvent(at, kind, title, detail)


def timeline_events(
    observations: Iterable[Resource], encounters: Iterable[Resource]
) -> tuple[list[TimelineEvent], list[RatingPoint]]:
    """Ratings, admissions, contacts and reviews in date order, and the rating points for the chart."""
    events, points = rating_events(observations)
    events += [e for e in (encounter_event(enc) for enc in encounters) if e is not None]
    return sorted(events, key=lambda e: (e.at, e.kind)), sorted(points, key=lambda p: p.on)


async def timeline(
    request: Request, caller: Caller, repo: FhirRepository, person_id: str
) -> tuple[list[TimelineEvent], list[RatingPoint]]:
    subject = f"Patient/{person_id}"
    rating_code = f"{urls.CS_OBSERVATION_CODE}|{ObservationCode.DSR_RATING.value}"
    observations, _ = await find(request, caller, repo, "Observation", [("subject", subject), ("code", rating_code)])
    encounters, _ = await find(request, caller, repo, "Encounter", [("subject", subject)])
    return timeline_events(observations, encounters)
