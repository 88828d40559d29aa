"""Hypothesis strategies for every keyworking record: valid records only, built the way partners would send them.

Cases are built by a random walk through the lifecycle (so every generated case is one the state machine can
reach); the other records are drawn field by field within their rules.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from mappings.identifiers import nhs_number_check_digit
from mappings.keyworking import lifecycle
from mappings.keyworking.records import (
    Agency,
    CareTeam,
    Contact,
    KeyworkingCase,
    Person,
    PersonRef,
    RegisterEntry,
    ReviewMeeting,
)
from mappings.keyworking.terminology import (
    MEETING_TYPES,
    CareTeamRole,
    ClosureReason,
    KeyworkingPhase,
    RegisterStatus,
    ReviewType,
    ServiceModel,
)

ZONES = [
    UTC,
    timezone(timedelta(hours=1)),
    timezone(timedelta(hours=-5, minutes=-30)),
    timezone(timedelta(hours=5, minutes=45)),
]

# Text as partners send it: any printable characters, including markup and non-Latin scripts.
_printable = st.characters(blacklist_categories=("Cs", "Cc"))
names = st.text(_printable, min_size=1, max_size=40).filter(lambda s: s.strip() != "").map(str.strip)
texts = (
    st.text(st.one_of(_printable, st.sampled_from("\n\t<>&\"'")), min_size=1, max_size=200)
    .filter(lambda s: s.strip() != "")
    .map(str.strip)
)
record_ids = st.from_regex(r"[A-Za-z0-9\-.]{1,40}", fullmatch=True)
resource_ids = st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31))
zones = st.sampled_from(ZONES)


def moments(on_or_after: date | None = None, before: date | None = None) -> st.SearchStrategy[datetime]:
    low = on_or_after or date(2000, 1, 1)
    high = before or low + timedelta(days=3650)
    return st.builds(
        lambda d, t, z: datetime.combine(d, t, z),
        st.dates(min_value=low, max_value=high),
        st.times(),
        zones,
    )


def _nhs_number(nine: str) -> str | None:
    check = nhs_number_check_digit(nine)
    return None if check is None else nine + str(check)


nhs_numbers = st.from_regex(r"[0-9]{9}", fullmatch=True).map(_nhs_number).filter(lambda n: n is not None)
ods_codes = st.from_regex(r"[A-Z0-9]{3,10}", fullmatch=True)
postcodes = st.from_regex(r"[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}", fullmatch=True)
upns = st.from_regex(r"[A-HJ-NPR-Z][0-9]{11}[0-9A-HJ-NPR-Z]", fullmatch=True)


def person_refs(*types: str) -> st.SearchStrategy[PersonRef]:
    types = types or ("Practitioner", "PractitionerRole", "RelatedPerson", "Patient")
    references = st.one_of(st.none(), st.builds(lambda t, i: f"{t}/{i}", st.sampled_from(types), resource_ids))
    return st.builds(PersonRef, name=names, reference=references)


professionals = person_refs("Practitioner", "PractitionerRole")
participants = person_refs("Practitioner", "PractitionerRole", "RelatedPerson")
agencies = st.builds(Agency, ods_code=ods_codes, name=st.none() | names)


@st.composite
def people(draw: st.DrawFn) -> Person:
    nhs = draw(st.none() | nhs_numbers)
    data: dict[str, Any] = {
        "id": draw(record_ids),
        "nhs_number": nhs,
        "nhs_number_verification": draw(st.sampled_from(["01", "02", "03", "04", "05", "06", "07", "08"]))
        if nhs and draw(st.booleans())
        else None,
        "la_child_id": draw(
            st.none()
            | st.fixed_dictionaries(
                {
                    "la_number": st.from_regex(r"[0-9]{3}", fullmatch=True),
                    "value": st.from_regex(r"[A-Za-z0-9\-/]{1,20}", fullmatch=True),
                }
            )
        ),
        "upn": draw(st.none() | upns),
        "name": {"given": draw(st.lists(names, max_size=3)), "family": draw(names)},
        "birth_date": draw(days),
        "sex": draw(st.sampled_from(["male", "female", "other", "unknown"])),
        "postcode": draw(st.none() | postcodes),
        "gp_practice": draw(st.none() | ods_codes),
        "diagnoses": [
            {
                "diagnosis": d,
                "verification": draw(st.sampled_from(["confirmed", "provisional", "unconfirmed"])),
                "recorded_on": draw(st.none() | days),
            }
            for d in draw(st.lists(st.sampled_from(["learning-disability", "autism"]), unique=True))
        ],
        "looked_after": draw(st.none() | st.booleans()),
    }
    return Person.model_validate(data)


def consents(on_or_after: date) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "basis": st.sampled_from(["consent", "best-interests"]),
            "status": st.sampled_from(["proposed", "given", "refused", "withdrawn"]),
            "decided_by": person_refs().map(lambda r: r.model_dump()),
            "decided_at": moments(on_or_after),
            "provisions": st.lists(
                st.fixed_dictionaries(
                    {
                        "choice": st.sampled_from(["permit", "deny"]),
                        "recipients": st.lists(
                            st.sampled_from(["nhs-provider", "local-authority", "school", "childrens-home"])
                            | st.just("youth-justice"),
                            min_size=1,
                            max_size=3,
                            unique=True,
                        ),
                    }
                ),
                max_size=3,
            ),
        }
    )


@st.composite
def register_entries(draw: st.DrawFn) -> RegisterEntry:
    status = draw(st.sampled_from(list(RegisterStatus)))
    referred = draw(days)
    ended = None
    if status in (RegisterStatus.DECLINED, RegisterStatus.CLOSED):
        ended = referred + timedelta(days=draw(st.integers(0, 2000)))
    last = ended or referred + timedelta(days=2000)
    times = sorted(draw(st.lists(moments(referred, last), max_size=5)), key=lambda m: m.timestamp())
    ratings = [
        {
            "rating": draw(st.sampled_from(["blue", "red", "amber", "green"])),
            "reason": draw(texts),
            "author": draw(professionals).model_dump(),
            "at": at,
            "next_review": at.date() + timedelta(days=draw(st.integers(0, 120))),
        }
        for at in times
    ]
    return RegisterEntry.model_validate(
        {
            "id": draw(record_ids),
            "person_id": draw(record_ids),
            "status": status,
            "referred_on": referred,
            "ended_on": ended,
            "managing_organisation": draw(st.none() | agencies.map(lambda a: a.model_dump())),
            "consent": draw(st.none() | consents(referred)),
            "ratings": ratings,
        }
    )


@st.composite
def cases(draw: st.DrawFn) -> KeyworkingCase:
    """A case after a random walk of allowed moves (so it is one the lifecycle can reach)."""
    case = KeyworkingCase(
        id=draw(record_ids),
        person_id=draw(record_ids),
        service_model=draw(st.sampled_from(list(ServiceModel))),
        history=({"phase": KeyworkingPhase.REFERRED, "start": draw(days)},),  # type: ignore[arg-type]
        care_team_id=draw(st.none() | record_ids),
        managing_organisation=draw(st.none() | agencies),
    )
    for _ in range(draw(st.integers(0, 12))):
        moves = sorted(lifecycle.allowed_moves(case))
        if not moves:
            break
        onward = [m for m in moves if m is not KeyworkingPhase.CLOSED]
        # Closing ends the walk, so it is drawn rarely: most cases should be seen in their middle phases.
        to = draw(st.sampled_from(onward)) if onward and draw(st.integers(0, 5)) else draw(st.sampled_from(moves))
        on = case.phase_since + timedelta(days=draw(st.integers(0, 200)))
        if to is KeyworkingPhase.ALLOCATED:
            case = lifecycle.allocate(case, draw(st.lists(professionals, min_size=1, max_size=2)), on)
        elif to is KeyworkingPhase.CLOSED:
            case = lifecycle.close(case, draw(st.sampled_from(list(ClosureReason))), on)
        else:
            case = lifecycle.move(case, to, on)
    return case


@st.composite
def care_teams(draw: st.DrawFn) -> CareTeam:
    members: list[dict[str, Any]] = []
    others = [r for r in CareTeamRole if r is not CareTeamRole.KEYWORKER]
    for _ in range(draw(st.integers(0, 5))):
        member = draw(person_refs())
        start = draw(days)
        members.append(
            {
                "role": draw(st.sampled_from(others)),
                "member": member.model_dump(),
                "agency": None
                if member.resource_type in ("RelatedPerson", "Patient")
                else draw(st.none() | agencies.map(lambda a: a.model_dump())),
                "start": start,
                "end": draw(st.none() | st.just(start + timedelta(days=draw(st.integers(0, 900))))),
            }
        )
    # Keyworkers: up to two chains of successive keyworkers, so never more than two at once.
    for _ in range(draw(st.integers(0 if members else 1, 2))):
        start = draw(days)
        for n in range(draw(st.integers(1, 3))):
            end = start + timedelta(days=draw(st.integers(1, 400)))
            members.append(
                {
                    "role": CareTeamRole.KEYWORKER,
                    "member": draw(professionals).model_dump(),
                    "agency": draw(st.none() | agencies.map(lambda a: a.model_dump())),
                    "start": start,
                    "end": end if draw(st.booleans()) else None,
                    "change_reason": draw(st.sampled_from(list(lifecycle.KeyworkerChangeReason))) if n else None,
                }
            )
            if members[-1]["end"] is None:
                break
            start = end
    order = draw(st.permutations(range(len(members))))
    return CareTeam.model_validate(
        {
            "id": draw(record_ids),
            "person_id": draw(record_ids),
            "name": draw(st.none() | names),
            "members": [members[i] for i in order],
        }
    )


attendees = st.fixed_dictionaries(
    {"person": participants.map(lambda p: p.model_dump()), "role": st.none() | st.sampled_from(list(CareTeamRole))}
)


@st.composite
def contacts(draw: st.DrawFn) -> Contact:
    start = draw(moments())
    return Contact.model_validate(
        {
            "id": draw(record_ids),
            "person_id": draw(record_ids),
            "case_id": draw(st.none() | record_ids),
            "contact_type": draw(
                st.sampled_from(
                    [
                        "session",
                        "home-visit",
                        "hospital-visit",
                        "school-visit",
                        "monitoring-call",
                        "group-work",
                        "detached-work",
                    ]
                )
            ),
            "status": draw(st.sampled_from(["planned", "finished", "cancelled"])),
            "start": start,
            "end": draw(st.none() | st.just(start + timedelta(minutes=draw(st.integers(0, 600))))),
            "place": draw(st.none() | names),
            "participants": draw(st.lists(attendees, max_size=4)),
            "views": draw(st.none() | texts),
        }
    )


@st.composite
def review_meetings(draw: st.DrawFn, with_task_ids: bool = False) -> ReviewMeeting:
    meeting_type = draw(st.sampled_from(sorted(MEETING_TYPES)))
    laep = meeting_type is ReviewType.LAEP
    status = draw(st.sampled_from(["planned", "finished", "cancelled"]))
    finished = status == "finished"
    start = draw(moments())
    register_entry_id = draw(st.none() | record_ids)
    recommendations = []
    if finished:
        own_ids = draw(st.lists(resource_ids, max_size=4, unique=True))
        for own_id in own_ids:
            recommendations.append(
                {
                    "id": own_id if with_task_ids or draw(st.booleans()) else None,
                    "text": draw(texts),
                    "owner": draw(person_refs()).model_dump(),
                    "owner_agency": draw(agencies).model_dump(),
                    "due": start.date() + timedelta(days=draw(st.integers(0, 365))),
                    "status": draw(
                        st.sampled_from(["requested", "accepted", "in-progress", "completed", "cancelled", "failed"])
                    ),
                }
            )
    answers = {k: draw(st.none() | texts) for k in ("is_safe", "current_care", "future_plan", "needs_hospital")}
    return ReviewMeeting.model_validate(
        {
            "id": draw(record_ids),
            "person_id": draw(record_ids),
            "register_entry_id": register_entry_id,
            "case_id": draw(st.none() | record_ids) if register_entry_id else None,
            "meeting_type": meeting_type,
            "status": status,
            "start": start,
            "end": draw(st.none() | st.just(start + timedelta(minutes=draw(st.integers(0, 480))))),
            "panel": {
                "chair": draw(professionals).model_dump(),
                "expert_by_experience": None if laep else draw(st.none() | participants.map(lambda p: p.model_dump())),
                "clinical_expert": None if laep else draw(st.none() | professionals.map(lambda p: p.model_dump())),
            },
            "attendees": draw(st.lists(attendees, max_size=4)),
            "consent_to_share": draw(st.none() | consents(start.date() - timedelta(days=30))),
            "answers": answers,
            "needs_hospital": draw(st.none() | st.booleans()) if finished else None,
            "recommendations": recommendations,
        }
    )


def any_record() -> st.SearchStrategy[Any]:
    return st.one_of(people(), register_entries(), cases(), care_teams(), contacts(), review_meetings())
