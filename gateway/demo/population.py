"""A synthetic Integrated Care System for demonstrations: five places, a few hundred young people, every state.

Pure and deterministic: the same seed and day give the same records, with ids derived from the seed, so loading
twice updates rather than duplicates. Everything is invented: NHS numbers are drawn from the 999 range that is never
issued (with a valid Modulus 11 check digit), names are combined at random from short lists, and organisation codes
are the demo's own.

Each young person gets a register entry with a rating history (blue, red, amber and green all occur), most get a
care team across health, social care and education and a keyworking case in one of the three service models, moved
through the real lifecycle functions to a phase of that model (so every history is a legal one), contacts, and the
red and blue ones C(E)TR or LAEP meetings whose recommendations are in every status.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from mappings.identifiers import nhs_number_check_digit
from mappings.keyworking import lifecycle, urls
from mappings.keyworking.records import (
    Agency,
    Attendee,
    CareTeam,
    CareTeamMember,
    ConsentBasis,
    ConsentDecision,
    ConsentStatus,
    Contact,
    Diagnosed,
    DiagnosisVerification,
    KeyQuestionAnswers,
    KeyworkingCase,
    LaChildId,
    MeetingStatus,
    NhsNumberVerification,
    Panel,
    Person,
    PersonName,
    PersonRef,
    PhasePeriod,
    RatingChange,
    Recommendation,
    RecommendationStatus,
    RegisterEntry,
    ReviewMeeting,
    Sex,
)
from mappings.keyworking.terminology import (
    SERVICE_MODELS,
    CareTeamRole,
    ClosureReason,
    ContactType,
    Diagnosis,
    DsrRating,
    KeyworkingPhase,
    RegisterStatus,
    ReviewType,
    ServiceModel,
)

P = KeyworkingPhase
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Place:
    name: str
    la_number: str
    la_code: str  # the local authority's ODS-style code
    trust: str  # mental-health trust ODS code
    gp_practices: tuple[str, ...]
    postcodes: tuple[str, ...]
    schools: tuple[str, ...]  # school URNs


PLACES: tuple[Place, ...] = (
    Place("Northbridge", "901", "LA901", "RX901", ("X90101", "X90102", "X90103"), ("NB1", "NB2", "NB3"), ("190001",)),
    Place("Eastmoor", "902", "LA902", "RX901", ("X90201", "X90202"), ("EM1", "EM4", "EM7"), ("190101", "190102")),
    Place("Riverside", "903", "LA903", "RX902", ("X90301", "X90302", "X90303"), ("RS2", "RS5"), ("190201",)),
    Place("Highfield", "904", "LA904", "RX902", ("X90401", "X90402"), ("HF1", "HF3", "HF9"), ("190301", "190302")),
    Place("Kingsholm", "905", "LA905", "RX903", ("X90501", "X90502"), ("KH1", "KH2"), ("190401",)),
)
ICB = Agency(ods_code="QX9", name="Demo Integrated Care Board")

GIVEN = (
    "Aaliyah Alfie Amelia Archie Ava Ayaan Bella Callum Chloe Daniel Ella Ethan Evie Finley Freya George Grace "
    "Harper Harry Isla Isaac Jacob Jayden Kai Leo Lily Logan Maya Mia Mohammed Noah Olivia Oscar Poppy Reggie Rosie "
    "Sienna Theo Tyler Zara Zainab Kacper Priya Kofi Niamh Ruby Rhys Amir"
).split()
FAMILY = (
    "Ahmed Ali Andrews Begum Bennett Brown Campbell Chen Clarke Davies Edwards Evans Green Hall Harris Hughes Hussain "
    "Jackson James Johnson Kaur Khan Kowalski Lewis Mensah Mitchell Morris Murphy Nowak Okafor Parker Patel Roberts "
    "Robinson Shah Singh Smith Taylor Thomas Turner Walker Ward White Williams Wilson Wood Wright Young"
).split()
STAFF_GIVEN = "Sam Kim Lee Jo Alex Chris Robin Pat Jamie Morgan Ash Charlie Drew Frankie Nic Sasha".split()

VIEWS = (
    "I liked going to the park today. I don't want to change school.",
    "Loud places make me scared. I want my own room back.",
    "I want to see my brother more.",
    "Mum helps me when I get upset. I don't like the new medicine.",
    "I want to go to college and do cooking.",
    "Nobody listens when I say I am not ok.",
)
RECOMMENDATIONS = (
    ("Arrange an autism-informed sensory assessment at home.", CareTeamRole.CAMHS_CLINICIAN),
    ("Review the EHCP with a reduced-timetable plan for the next term.", CareTeamRole.SENCO_OR_TEACHER),
    ("Provide short breaks for the family, at least two a month.", CareTeamRole.SOCIAL_WORKER),
    ("Agree a crisis plan with the family and share it with the GP.", CareTeamRole.KEYWORKER),
    ("Refer to the intensive support team for positive behaviour support.", CareTeamRole.CAMHS_CLINICIAN),
    ("Hold a placement stability meeting within two weeks.", CareTeamRole.SOCIAL_WORKER),
)
RATING_MIX = ((DsrRating.BLUE, 8), (DsrRating.RED, 22), (DsrRating.AMBER, 38), (DsrRating.GREEN, 32))
MODEL_MIX = (
    (ServiceModel.NHS_LD_AUTISM, 60),
    (ServiceModel.CHILDRENS_HOME, 20),
    (ServiceModel.EXTRA_FAMILIAL_HARM, 20),
)


@dataclass(slots=True)
class YoungPersonRecords:
    """Everything the demo records about one young person, in the order it is loaded."""

    person: Person
    register_entry: RegisterEntry
    care_team: CareTeam | None = None
    case: KeyworkingCase | None = None
    contacts: list[Contact] = field(default_factory=list)
    reviews: list[ReviewMeeting] = field(default_factory=list)


def nhs_number(n: int) -> str:
    """The n-th synthetic NHS number in the never-issued 999 range (skipping bases with no valid check digit)."""
    base = 999_000_000 + (n * 7) % 999_000
    while True:
        nine = str(base)
        check = nhs_number_check_digit(nine)
        if check is not None:
            return nine + str(check)
        base += 1


def _pick(rng: random.Random, weighted: tuple[tuple[T, int], ...]) -> T:
    values, weights = zip(*weighted, strict=True)
    chosen: T = rng.choices(values, weights=weights)[0]
    return chosen


def _moment(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour, 0), tzinfo=UTC)


def _staff(rng: random.Random, place: Place, role: str) -> PersonRef:
    given, family = rng.choice(STAFF_GIVEN), rng.choice(FAMILY)
    slug = f"{place.name}-{role}-{given}-{family}".lower()
    return PersonRef(name=f"{given} {family}", reference=f"Practitioner/demo-{slug}"[:60])


def organisations() -> list[dict[str, Any]]:
    """The demo ICS's agencies as FHIR Organizations, by the ODS codes its care teams name (a trust serving two
    places takes the first one's name), each with an invented phone number (Ofcom's drama range, 01632 960xxx)
    and email address, so that a summary can give every professional member a contact route through their agency."""
    names: dict[str, str] = {ICB.ods_code: ICB.name or ICB.ods_code}
    for place in PLACES:
        names.setdefault(place.trust, f"{place.name} mental health trust")
        names.setdefault(place.la_code, f"{place.name} Council")
        for school in place.schools:
            names.setdefault(school, f"{place.name} Academy")
        for number, practice in enumerate(place.gp_practices, start=1):
            names.setdefault(practice, f"{place.name} GP practice {number}")
    return [
        {
            "resourceType": "Organization",
            "id": f"demo-org-{code.lower()}",
            "identifier": [{"system": urls.ODS_ORGANISATION, "value": code}],
            "active": True,
            "name": name,
            "telecom": [
                {"system": "phone", "value": f"01632 960{n:03d}", "use": "work", "rank": 1},
                {"system": "email", "value": f"contact-{code.lower()}@demo-ics.example", "use": "work", "rank": 2},
            ],
        }
        for n, (code, name) in enumerate(names.items())
    ]


def population(*, seed: int = 7, people: int = 300, today: date | None = None) -> Iterator[YoungPersonRecords]:
    """The synthetic ICS, one young person at a time (deterministic for a seed and a day)."""
    today = today or datetime.now(UTC).date()
    for n in range(people):
        rng = random.Random(f"{seed}:{n}")
        yield _young_person(rng, seed, n, today)


def _young_person(rng: random.Random, seed: int, n: int, today: date) -> YoungPersonRecords:
    place = PLACES[n % len(PLACES)]
    key = f"demo{seed}-{n:04d}"
    model = _pick(rng, MODEL_MIX)
    rules = SERVICE_MODELS[model]
    age = rng.randint(max(rules.min_age, 5), min(rules.max_age, 24) - 1)
    birth = today - timedelta(days=age * 365 + rng.randint(30, 330))
    given, family = rng.choice(GIVEN), rng.choice(FAMILY)
    diagnoses = [Diagnosed(diagnosis=Diagnosis.AUTISM, verification=DiagnosisVerification.CONFIRMED)]
    if rng.random() < 0.45:
        diagnoses.append(
            Diagnosed(
                diagnosis=Diagnosis.LEARNING_DISABILITY,
                verification=rng.choice(list(DiagnosisVerification)),
            )
        )
    person = Person(
        id=f"{key}-yp",
        nhs_number=nhs_number(n + seed * 10_000),
        nhs_number_verification=NhsNumberVerification("01"),
        la_child_id=LaChildId(la_number=place.la_number, value=f"C{n:06d}"),
        name=PersonName(given=(given,), family=family),
        birth_date=birth,
        sex=rng.choice([Sex("male"), Sex("female")]),
        postcode=f"{rng.choice(place.postcodes)} {rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXY')}"
        f"{rng.choice('ABDEFGHJLNPQRSTUWXY')}",
        gp_practice=rng.choice(place.gp_practices),
        diagnoses=tuple(diagnoses),
        looked_after=model is ServiceModel.CHILDRENS_HOME or rng.random() < 0.1,
    )
    referred = today - timedelta(days=rng.randint(60, 540))
    status = _pick(
        rng,
        (
            (RegisterStatus.ON_REGISTER, 86),
            (RegisterStatus.REFERRAL, 3),
            (RegisterStatus.SCREENING, 4),
            (RegisterStatus.DECLINED, 3),
            (RegisterStatus.CLOSED, 4),
        ),
    )
    lead = _staff(rng, place, "dsr")
    entry = RegisterEntry(
        id=f"{key}-dsr",
        person_id=person.id or "",
        status=RegisterStatus.REFERRAL,
        referred_on=referred,
        managing_organisation=ICB,
        consent=ConsentDecision(
            basis=ConsentBasis.CONSENT if age >= 16 or rng.random() < 0.7 else ConsentBasis.BEST_INTERESTS,
            status=ConsentStatus.GIVEN,
            decided_by=PersonRef(name=f"Parent of {given} {family}"),
            decided_at=_moment(referred + timedelta(days=1), 10),
        ),
    )
    final_rating = _pick(rng, RATING_MIX)
    if status is RegisterStatus.REFERRAL:
        pass
    elif status is RegisterStatus.DECLINED:
        entry = lifecycle.change_register_status(entry, RegisterStatus.DECLINED, referred + timedelta(days=10))
    else:
        entry = lifecycle.change_register_status(entry, RegisterStatus.SCREENING, referred + timedelta(days=3))
        entry = lifecycle.rate(entry, _rating(rng, DsrRating.AMBER, lead, referred + timedelta(days=5)))
        if status is not RegisterStatus.SCREENING:
            entry = lifecycle.change_register_status(entry, RegisterStatus.ON_REGISTER, referred + timedelta(days=7))
            path = _rating_path(rng, final_rating)
            first, span = referred + timedelta(days=7), (today - referred).days - 8
            for i, rating in enumerate(path):
                day = first + timedelta(days=span * (i + 1) // (len(path) + 1))
                entry = lifecycle.rate(entry, _rating(rng, rating, lead, day))
            if status is RegisterStatus.CLOSED:
                entry = lifecycle.change_register_status(entry, RegisterStatus.CLOSED, today - timedelta(days=1))
    out = YoungPersonRecords(person=person, register_entry=entry)
    if entry.status is not RegisterStatus.ON_REGISTER or rng.random() < 0.15:
        return out
    keyworkers = [_staff(rng, place, "kw")] + ([_staff(rng, place, "kw")] if rng.random() < 0.2 else [])
    out.care_team = _care_team(rng, key, person, place, model, keyworkers, referred)
    out.case = _case(rng, key, person, model, keyworkers, referred, today, out.care_team, final_rating)
    out.contacts = _contacts(rng, key, person, out.case, keyworkers, today)
    if final_rating in (DsrRating.RED, DsrRating.BLUE):
        out.reviews = _reviews(rng, key, person, place, entry, out.case, out.care_team, final_rating, today)
    return out


def _rating(rng: random.Random, rating: DsrRating, author: PersonRef, day: date) -> RatingChange:
    reasons = {
        DsrRating.BLUE: "Admitted to a mental-health inpatient unit.",
        DsrRating.RED: "Family in crisis; placement at risk of breaking down this week.",
        DsrRating.AMBER: "Rising anxiety and school refusal; family asking for more help.",
        DsrRating.GREEN: "Support plan working; risks managed at home and school.",
    }
    return RatingChange(
        rating=rating,
        reason=reasons[rating],
        author=author,
        at=_moment(day, rng.randint(9, 16)),
        next_review=day + timedelta(days=28 if rating in (DsrRating.RED, DsrRating.BLUE) else 56),
    )


def _rating_path(rng: random.Random, final: DsrRating) -> list[DsrRating]:
    path = [rng.choice([DsrRating.AMBER, DsrRating.RED, DsrRating.GREEN]) for _ in range(rng.randint(0, 2))]
    return [*path, final]


def _care_team(
    rng: random.Random,
    key: str,
    person: Person,
    place: Place,
    model: ServiceModel,
    keyworkers: list[PersonRef],
    start: date,
) -> CareTeam:
    trust = Agency(ods_code=place.trust, name=f"{place.name} mental health trust")
    council = Agency(ods_code=place.la_code, name=f"{place.name} Council")
    school = Agency(ods_code=rng.choice(place.schools), name=f"{place.name} Academy")
    members = [
        CareTeamMember(role=CareTeamRole.KEYWORKER, member=k, agency=trust, start=start + timedelta(days=7))
        for k in keyworkers
    ]
    members += [
        CareTeamMember(role=CareTeamRole.SOCIAL_WORKER, member=_staff(rng, place, "sw"), agency=council, start=start),
        CareTeamMember(
            role=CareTeamRole.SENCO_OR_TEACHER, member=_staff(rng, place, "senco"), agency=school, start=start
        ),
        CareTeamMember(
            role=CareTeamRole.CAMHS_CLINICIAN, member=_staff(rng, place, "camhs"), agency=trust, start=start
        ),
        CareTeamMember(
            role=CareTeamRole.GP,
            member=_staff(rng, place, "gp"),
            agency=Agency(ods_code=person.gp_practice or place.gp_practices[0]),
            start=start,
        ),
        CareTeamMember(
            role=CareTeamRole.PARENT_OR_CARER,
            member=PersonRef(name=f"Parent of {person.name.given[0]} {person.name.family}"),
            start=start,
        ),
    ]
    if person.looked_after:
        members.append(
            CareTeamMember(role=CareTeamRole.IRO, member=_staff(rng, place, "iro"), agency=council, start=start)
        )
        members.append(
            CareTeamMember(
                role=CareTeamRole.VIRTUAL_SCHOOL_HEAD, member=_staff(rng, place, "vsh"), agency=council, start=start
            )
        )
    if model is ServiceModel.EXTRA_FAMILIAL_HARM:
        members.append(
            CareTeamMember(
                role=CareTeamRole.YOUTH_JUSTICE_WORKER, member=_staff(rng, place, "yjs"), agency=council, start=start
            )
        )
    return CareTeam(
        id=f"{key}-team", person_id=person.id or "", name="Team around the young person", members=tuple(members)
    )


#: The phases to walk through to reach each target phase (before the model narrows them).
_ROUTE = {
    P.REFERRED: [],
    P.ALLOCATED: [P.ALLOCATED],
    P.INTENSIVE: [P.ALLOCATED, P.INTENSIVE],
    P.STEP_DOWN: [P.ALLOCATED, P.INTENSIVE, P.STEP_DOWN],
    P.MONITORING: [P.ALLOCATED, P.INTENSIVE, P.STEP_DOWN, P.MONITORING],
    P.INPATIENT: [P.ALLOCATED, P.INTENSIVE, P.INPATIENT],
    P.TRANSITION: [P.ALLOCATED, P.INTENSIVE, P.MONITORING, P.TRANSITION],
    P.CLOSED: [P.ALLOCATED, P.INTENSIVE, P.CLOSED],
}


def _case(
    rng: random.Random,
    key: str,
    person: Person,
    model: ServiceModel,
    keyworkers: list[PersonRef],
    referred: date,
    today: date,
    team: CareTeam,
    rating: DsrRating,
) -> KeyworkingCase:
    phases = SERVICE_MODELS[model].phases
    if rating is DsrRating.BLUE and P.INPATIENT in phases:
        target = P.INPATIENT
    else:
        target = rng.choice(sorted((phases - {P.INPATIENT}), key=list(P).index))
    case = KeyworkingCase(
        id=f"{key}-kw",
        person_id=person.id or "",
        service_model=model,
        history=(PhasePeriod(phase=P.REFERRED, start=referred),),
        care_team_id=team.id,
    )
    route = [p for p in _ROUTE[target] if p in phases]
    if target is P.STEP_DOWN and P.STEP_DOWN not in phases:
        route = [P.ALLOCATED, P.INTENSIVE]
    day = referred
    span = max(1, (today - referred).days - 2)
    for step in route:
        day = min(today - timedelta(days=1), day + timedelta(days=max(1, span // (len(route) + 1))))
        if step is P.ALLOCATED:
            case = lifecycle.allocate(case, keyworkers, day)
        elif step is P.CLOSED:
            case = lifecycle.close(case, rng.choice(list(ClosureReason)), day)
        else:
            case = lifecycle.move(case, step, day)
        if step is P.INTENSIVE and SERVICE_MODELS[model].cycle_weeks and rng.random() < 0.4 and target is P.INTENSIVE:
            case = lifecycle.review_cycle(case, lifecycle.ReviewDecision.CONTINUE, min(today, day + timedelta(days=84)))
    return case


def _contacts(
    rng: random.Random,
    key: str,
    person: Person,
    case: KeyworkingCase,
    keyworkers: list[PersonRef],
    today: date,
) -> list[Contact]:
    if case.phase in (P.REFERRED,):
        return []
    kinds = [ContactType.SESSION, ContactType.HOME_VISIT, ContactType.SCHOOL_VISIT, ContactType.MONITORING_CALL]
    if case.service_model is ServiceModel.EXTRA_FAMILIAL_HARM:
        kinds += [ContactType.DETACHED_WORK, ContactType.GROUP_WORK]
    if case.phase is P.INPATIENT:
        kinds.append(ContactType.HOSPITAL_VISIT)
    out = []
    since = case.history[1].start if len(case.history) > 1 else case.referred_on
    for i in range(rng.randint(1, 6)):
        day = since + timedelta(days=rng.randint(0, max(0, (today - since).days - 1)))
        start = _moment(day, rng.randint(9, 17))
        out.append(
            Contact(
                id=f"{key}-contact-{i + 1}",
                person_id=person.id or "",
                case_id=case.id,
                contact_type=rng.choice(kinds),
                status=MeetingStatus.FINISHED,
                start=start,
                end=start + timedelta(minutes=rng.choice([30, 45, 60, 90])),
                place=rng.choice(["Family home", "School", "Community centre", "Café", "Ward"]),
                participants=(Attendee(person=rng.choice(keyworkers), role=CareTeamRole.KEYWORKER),),
                views=rng.choice(VIEWS) if rng.random() < 0.6 else None,
            )
        )
    return out


def _reviews(
    rng: random.Random,
    key: str,
    person: Person,
    place: Place,
    entry: RegisterEntry,
    case: KeyworkingCase,
    team: CareTeam,
    rating: DsrRating,
    today: date,
) -> list[ReviewMeeting]:
    meeting_type = (
        ReviewType.POST_ADMISSION_CETR
        if rating is DsrRating.BLUE and rng.random() < 0.5
        else rng.choice([ReviewType.COMMUNITY_CETR, ReviewType.COMMUNITY_CETR, ReviewType.LAEP])
    )
    assert entry.current_rating is not None
    day = max(entry.current_rating.at.date(), today - timedelta(days=rng.randint(5, 120)))
    if day > today:
        day = today
    start = _moment(day, 10)
    members = {m.role: m for m in team.members}
    recommendations = []
    statuses = list(RecommendationStatus)
    for i, (text, role) in enumerate(rng.sample(RECOMMENDATIONS, rng.randint(2, 4))):
        owner = members.get(role) or team.members[0]
        recommendations.append(
            Recommendation(
                id=f"{key}-cetr-rec-{i + 1}",
                text=text,
                owner=owner.member,
                owner_agency=owner.agency or Agency(ods_code=place.la_code),
                due=day + timedelta(days=rng.choice([14, 28, 42, 90])),
                status=rng.choice(statuses),
            )
        )
    laep = meeting_type is ReviewType.LAEP
    return [
        ReviewMeeting(
            id=f"{key}-cetr",
            person_id=person.id or "",
            register_entry_id=entry.id,
            case_id=case.id,
            meeting_type=meeting_type,
            status=MeetingStatus.FINISHED,
            start=start,
            end=start + timedelta(hours=3),
            panel=Panel(
                chair=_staff(rng, place, "chair"),
                expert_by_experience=None if laep else PersonRef(name=f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}"),
                clinical_expert=None if laep else _staff(rng, place, "clinician"),
            ),
            answers=KeyQuestionAnswers(
                is_safe="Safe at present with two-to-one support at home.",
                current_care="Care is reactive; the school and CAMHS plans do not join up.",
                future_plan="A joint plan is being agreed, led by the keyworker.",
                needs_hospital="No: needs can be met in the community with the recommended support."
                if rating is not DsrRating.BLUE
                else "Yes for now; discharge planning to start at once.",
            ),
            needs_hospital=rating is DsrRating.BLUE,
            recommendations=tuple(recommendations),
        )
    ]
