"""The typed records case-management systems send and receive: request and response bodies of the domain API.

Every record is a frozen pydantic model that forbids unknown fields, so a bad body fails with an error naming the
field (the API answers 422): a bad NHS number (Modulus 11), an unknown code, an end before its start. Rules that
need today's date (age 0-25) are separate functions (:func:`check_age`), because records are also read back from
FHIR, where yesterday's young person may be 26 today.

``id`` is the FHIR logical id of the record's main resource; it is None in a create request and set in every
response. Ids are at most 48 characters so that the resources a record maps to can derive theirs from it
(``<id>-consent``, ``<id>-rating-3``; FHIR allows 64).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from mappings.identifiers import is_nhs_number, normalise_nhs_number
from mappings.keyworking.terminology import (
    MEETING_TYPES,
    SERVICE_MODELS,
    CareTeamRole,
    ClosureReason,
    ConsentCategory,
    ContactType,
    Diagnosis,
    DsrRating,
    KeyworkerChangeReason,
    KeyworkingPhase,
    RecipientType,
    RegisterStatus,
    ReviewType,
    ServiceModel,
    SharingChoice,
)

# -- building blocks ------------------------------------------------------------------------------------------------


def _no_control_characters(text: str) -> str:
    """FHIR strings may not hold control characters other than tab, carriage return and line feed."""
    if any(ord(c) < 32 and c not in "\t\r\n" for c in text):
        raise ValueError("must not contain control characters")
    return text


#: A short piece of text: a name, a place, a title (one line, trimmed).
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\r\n\t]*$"),
    AfterValidator(_no_control_characters),
]
#: Free text (views, reasons, answers): trimmed, up to 10,000 characters, line breaks allowed.
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000),
    AfterValidator(_no_control_characters),
]
#: A FHIR logical id that leaves room for the ids derived from it.
RecordId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-.]{1,48}$")]
#: A FHIR logical id of a resource the gateway did not necessarily write (e.g. a Recommendation's Task).
ResourceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]


def _nhs_number(text: str) -> str:
    digits = normalise_nhs_number(text)
    if not is_nhs_number(digits):
        raise ValueError("is not a valid NHS number (ten digits, the last a Modulus 11 check digit)")
    return digits


def _upper(value: Any) -> Any:
    """Codes are compared in upper case without surrounding spaces (``b86001 `` is ``B86001``)."""
    return value.strip().upper() if isinstance(value, str) else value


#: An NHS number, written with or without spaces; stored as ten digits whose last is the Modulus 11 check digit.
NhsNumber = Annotated[str, AfterValidator(_nhs_number)]
#: An ODS organisation code (GP practice, trust, ICB, local authority): 3 to 10 letters and digits, upper case.
OdsCode = Annotated[str, BeforeValidator(_upper), StringConstraints(pattern=r"^[A-Z0-9]{3,10}$")]
#: A DfE local authority number (three digits, e.g. 820).
LaNumber = Annotated[str, StringConstraints(pattern=r"^[0-9]{3}$")]
#: A DfE unique pupil number: a check letter, eleven digits, then a digit or letter (I, O and S are never used).
#: Only the format is checked: the check-letter algorithm is not verified from a source we hold.
Upn = Annotated[
    str,
    BeforeValidator(_upper),
    StringConstraints(pattern=r"^[A-HJ-NPR-Z][0-9]{11}[0-9A-HJ-NPR-Z]$"),
]

_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})$")


def _postcode(text: str) -> str:
    match = _POSTCODE.match(" ".join(text.upper().split()))
    if match is None:
        raise ValueError("is not a UK postcode (e.g. LS1 4AP)")
    return f"{match.group(1)} {match.group(2)}"


#: A UK postcode, normalised to upper case with one space before the inward code (``ls14ap`` → ``LS1 4AP``).
Postcode = Annotated[str, AfterValidator(_postcode)]

#: Resource types a reference to a person can name.
PERSON_TYPES = ("Practitioner", "PractitionerRole", "RelatedPerson", "Patient")


#: ``<type>/<id>`` naming one of PERSON_TYPES.
PersonReference = Annotated[str, StringConstraints(pattern=rf"^({'|'.join(PERSON_TYPES)})/[A-Za-z0-9\-.]{{1,64}}$")]


class Record(BaseModel):
    """Base of every record: immutable, unknown fields refused, text trimmed.

    Validation errors never quote the input (``hide_input_in_errors``): they name the field and the rule, so an
    error message that reaches a log or another system carries no name, NHS number or address.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, use_enum_values=False, hide_input_in_errors=True
    )


class PersonRef(Record):
    """A named person: a professional, a family member or the young person.

    ``reference`` (``Practitioner/<id>``, ``PractitionerRole/<id>``, ``RelatedPerson/<id>`` or ``Patient/<id>``)
    points at the gateway's resource when there is one; a name alone is a valid reference too, because partners
    often know people only by name.
    """

    name: Name
    reference: PersonReference | None = None

    @property
    def resource_type(self) -> str | None:
        return self.reference.split("/", 1)[0] if self.reference else None


def _only(*types: str) -> Callable[[PersonRef], PersonRef]:
    def check(ref: PersonRef) -> PersonRef:
        if ref.resource_type is not None and ref.resource_type not in types:
            raise ValueError(f"must refer to a {' or '.join(types)}, not a {ref.resource_type}")
        return ref

    return check


#: A professional: Practitioner or PractitionerRole (keyworkers, rating authors, panel members).
Professional = Annotated[PersonRef, AfterValidator(_only("Practitioner", "PractitionerRole"))]
#: Someone who takes part in a meeting or contact besides the young person (FHIR Encounter.participant.individual).
Participant = Annotated[PersonRef, AfterValidator(_only("Practitioner", "PractitionerRole", "RelatedPerson"))]


class Agency(Record):
    """An organisation (NHS trust, GP practice, local authority, school, voluntary-sector provider) by ODS code."""

    ods_code: OdsCode
    name: Name | None = None


def field_error(title: str, loc: tuple[str | int, ...], message: str, value: Any) -> ValidationError:
    """A pydantic ValidationError naming one field, for rules checked outside a model's own validation."""
    detail = InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=value)
    return ValidationError.from_exception_data(title, [detail], hide_input=True)


def _fail(model: type[BaseModel], loc: tuple[str | int, ...], message: str, value: Any) -> ValidationError:
    """An error for a cross-field rule, located at the field it is about (pydantic prefixes the outer path)."""
    return field_error(model.__name__, loc, message, value)


class Sex(StrEnum):
    """Administrative sex, as FHIR's AdministrativeGender (the CIN census ``<Sex>`` maps onto it)."""

    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


class NhsNumberVerification(StrEnum):
    """UK Core NHSNumberVerificationStatusEngland codes (the PDS trace status)."""

    VERIFIED = "01"
    NOT_TRACED = "02"
    TRACE_REQUIRED = "03"
    NO_MATCH = "04"
    TO_BE_RESOLVED = "05"
    TRACE_IN_PROGRESS = "06"
    NOT_PRESENT_NOT_REQUIRED = "07"
    TRACE_POSTPONED = "08"


NHS_NUMBER_VERIFICATION_DISPLAY: dict[NhsNumberVerification, str] = {
    NhsNumberVerification.VERIFIED: "Number present and verified",
    NhsNumberVerification.NOT_TRACED: "Number present but not traced",
    NhsNumberVerification.TRACE_REQUIRED: "Trace required",
    NhsNumberVerification.NO_MATCH: "Trace attempted - No match or multiple match found",
    NhsNumberVerification.TO_BE_RESOLVED: "Trace needs to be resolved - (NHS number or patient detail conflict)",
    NhsNumberVerification.TRACE_IN_PROGRESS: "Trace in progress",
    NhsNumberVerification.NOT_PRESENT_NOT_REQUIRED: "Number not present and trace not required",
    NhsNumberVerification.TRACE_POSTPONED: "Trace postponed (baby under six weeks old)",
}


# -- people ---------------------------------------------------------------------------------------------------------


class PersonName(Record):
    """A young person's official name (given names in order, family name)."""

    given: tuple[Name, ...] = ()
    family: Name


class LaChildId(Record):
    """A local authority's child id (CIN census ``LAchildID``), unique within the authority with this DfE number."""

    la_number: LaNumber
    value: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9\-/]{1,20}$")]


class DiagnosisVerification(StrEnum):
    """How sure the diagnosis is (FHIR condition-ver-status codes)."""

    CONFIRMED = "confirmed"
    PROVISIONAL = "provisional"
    UNCONFIRMED = "unconfirmed"


class Diagnosed(Record):
    """A learning disability or autism diagnosis (suspected or confirmed), the basis of eligibility."""

    diagnosis: Diagnosis
    verification: DiagnosisVerification = DiagnosisVerification.CONFIRMED
    recorded_on: date | None = None


class Person(Record):
    """A child or young person (0-25): who they are, how partners identify them, what makes them eligible."""

    id: RecordId | None = None
    nhs_number: NhsNumber | None = None
    nhs_number_verification: NhsNumberVerification | None = None
    la_child_id: LaChildId | None = None
    upn: Upn | None = None
    name: PersonName
    birth_date: date
    sex: Sex
    postcode: Postcode | None = None
    gp_practice: OdsCode | None = Field(default=None, description="ODS code of the registered GP practice")
    diagnoses: tuple[Diagnosed, ...] = Field(default=(), description="Learning disability and/or autism")
    looked_after: bool | None = Field(default=None, description="Looked after by a local authority")

    @field_validator("diagnoses")
    @classmethod
    def _in_code_order(cls, diagnoses: tuple[Diagnosed, ...]) -> tuple[Diagnosed, ...]:
        """One order whatever order partners (or a FHIR search) give them in, so that reads are stable."""
        order = list(Diagnosis)
        return tuple(sorted(diagnoses, key=lambda d: order.index(d.diagnosis)))

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.nhs_number_verification is not None and self.nhs_number is None:
            raise _fail(
                Person, ("nhs_number_verification",), "needs an nhs_number to describe", self.nhs_number_verification
            )
        seen: set[Diagnosis] = set()
        for i, d in enumerate(self.diagnoses):
            if d.diagnosis in seen:
                raise _fail(Person, ("diagnoses", i, "diagnosis"), f"{d.diagnosis.value} is listed twice", d.diagnosis)
            seen.add(d.diagnosis)
        return self


def age_on(birth_date: date, today: date) -> int:
    """Age in whole years on a day (someone born on 29 February turns a year older on 1 March)."""
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def check_age(person: Person, today: date, *, low: int = 0, high: int = 25) -> None:
    """Refuse (a ValidationError naming ``birth_date``) a person born in the future or outside ``low``-``high``.

    Not a model validator: it needs today's date, and records read back from FHIR must not fail as people age.
    """
    if person.birth_date > today:
        raise field_error("Person", ("birth_date",), "is in the future", person.birth_date.isoformat())
    age = age_on(person.birth_date, today)
    if not low <= age <= high:
        raise field_error(
            "Person", ("birth_date",), f"gives age {age}; keyworking is for ages {low} to {high}", person.birth_date
        )


# -- consent --------------------------------------------------------------------------------------------------------


class ConsentBasis(StrEnum):
    CONSENT = "consent"
    BEST_INTERESTS = "best-interests"


class ConsentStatus(StrEnum):
    """proposed (asked), given, refused, withdrawn (FHIR Consent.status proposed, active, rejected, inactive)."""

    PROPOSED = "proposed"
    GIVEN = "given"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"


class SharingProvision(Record):
    """One rule of a consent about sharing: the person's information may (permit) or may not (deny) go to these
    kinds of recipient."""

    choice: SharingChoice
    recipients: tuple[RecipientType, ...] = Field(min_length=1)

    @field_validator("recipients")
    @classmethod
    def _once_each(cls, value: tuple[RecipientType, ...]) -> tuple[RecipientType, ...]:
        if len(set(value)) != len(value):
            raise PydanticCustomError("duplicate", "names a recipient type more than once")
        return value


class ConsentDecision(Record):
    """Consent from the person (or someone with parental responsibility), or a recorded best-interests decision.

    ``decided_by`` is who consented, or for a best-interests decision who made it; ``decided_at`` is when.
    ``provisions`` are its rules about sharing, in order (an information-sharing consent: e.g. permit the NHS and
    the local authority, deny schools).
    """

    basis: ConsentBasis
    status: ConsentStatus
    decided_by: PersonRef
    decided_at: AwareDatetime
    provisions: tuple[SharingProvision, ...] = ()


# -- the Dynamic Support Register ------------------------------------------------------------------------------------


class RatingChange(Record):
    """A rating decision on a register entry: the new rating, why, who decided, when, and when to look again."""

    rating: DsrRating
    reason: Text
    author: Professional
    at: AwareDatetime
    next_review: date

    @model_validator(mode="after")
    def _review_after_decision(self) -> Self:
        if self.next_review < self.at.date():
            raise _fail(RatingChange, ("next_review",), "is before the decision it follows", self.next_review)
        return self


class RegisterEntry(Record):
    """A person's entry on an ICS's Dynamic Support Register, with its full rating history (oldest first)."""

    id: RecordId | None = None
    person_id: RecordId
    status: RegisterStatus
    referred_on: date
    ended_on: date | None = Field(default=None, description="When the entry was declined or closed")
    managing_organisation: Agency | None = Field(default=None, description="The ICB that holds the register")
    consent: ConsentDecision | None = None
    ratings: tuple[RatingChange, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        ended = self.status in (RegisterStatus.DECLINED, RegisterStatus.CLOSED)
        if self.ended_on is not None and self.ended_on < self.referred_on:
            raise _fail(RegisterEntry, ("ended_on",), "is before referred_on", self.ended_on)
        if ended and self.ended_on is None:
            raise _fail(RegisterEntry, ("ended_on",), f"is required when the entry is {self.status.value}", None)
        if not ended and self.ended_on is not None:
            raise _fail(RegisterEntry, ("ended_on",), f"must be empty while the entry is {self.status.value}", None)
        for i, change in enumerate(self.ratings):
            if i and change.at < self.ratings[i - 1].at:
                raise _fail(RegisterEntry, ("ratings", i, "at"), "is before the previous rating decision", None)
            if change.at.date() < self.referred_on:
                raise _fail(RegisterEntry, ("ratings", i, "at"), "is before the referral", change.at.isoformat())
            if self.ended_on is not None and change.at.date() > self.ended_on:
                raise _fail(RegisterEntry, ("ratings", i, "at"), "is after the entry ended", change.at.isoformat())
        return self

    @property
    def current_rating(self) -> RatingChange | None:
        return self.ratings[-1] if self.ratings else None


# -- keyworking cases ------------------------------------------------------------------------------------------------


class PhasePeriod(Record):
    """One stretch of a case in one phase; ``cycle`` numbers the 12-week intensive cycles (1, 2, ...)."""

    phase: KeyworkingPhase
    start: date
    end: date | None = None
    cycle: Annotated[int, Field(ge=1, le=1000)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.end is not None and self.end < self.start:
            raise _fail(PhasePeriod, ("end",), "is before start", self.end)
        if self.phase is KeyworkingPhase.INTENSIVE and self.cycle is None:
            raise _fail(PhasePeriod, ("cycle",), "is required in the intensive phase", None)
        if self.phase is not KeyworkingPhase.INTENSIVE and self.cycle is not None:
            raise _fail(PhasePeriod, ("cycle",), f"belongs to the intensive phase, not {self.phase.value}", self.cycle)
        return self


#: Phases in which a case has one or two named keyworkers.
STAFFED_PHASES = frozenset(
    {
        KeyworkingPhase.ALLOCATED,
        KeyworkingPhase.INTENSIVE,
        KeyworkingPhase.STEP_DOWN,
        KeyworkingPhase.MONITORING,
        KeyworkingPhase.INPATIENT,
        KeyworkingPhase.TRANSITION,
    }
)


class KeyworkingCase(Record):
    """A keyworking case: its service model, its phases so far (oldest first, the last is current) and keyworkers.

    Each phase ends the day the next begins; only a closed case has a closure reason. Use
    :mod:`mappings.keyworking.lifecycle` to move a case on: it refuses impossible transitions.
    """

    id: RecordId | None = None
    person_id: RecordId
    service_model: ServiceModel
    history: tuple[PhasePeriod, ...] = Field(description="Phases so far, oldest first; the last is current")
    keyworkers: Annotated[tuple[Professional, ...], Field(max_length=2)] = ()
    closure_reason: ClosureReason | None = None
    care_team_id: RecordId | None = None
    managing_organisation: Agency | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        # Checked here rather than with min_length, so that one bad phase is reported once, not also as "empty".
        if not self.history:
            raise _fail(KeyworkingCase, ("history",), "needs at least the referral", [])
        rules = SERVICE_MODELS[self.service_model]
        for i, period in enumerate(self.history):
            if period.phase not in rules.phases:
                raise _fail(
                    KeyworkingCase,
                    ("history", i, "phase"),
                    f"{period.phase.value} is not a phase of the {self.service_model.value} service model",
                    period.phase,
                )
            last = i == len(self.history) - 1
            if not last and period.end is None:
                raise _fail(KeyworkingCase, ("history", i, "end"), "is required for a past phase", None)
            if last and period.end is not None:
                raise _fail(KeyworkingCase, ("history", i, "end"), "must be empty for the current phase", period.end)
            if not last and period.end != self.history[i + 1].start:
                raise _fail(
                    KeyworkingCase, ("history", i + 1, "start"), "must be the day the previous phase ended", None
                )
        phase = self.phase
        if phase is KeyworkingPhase.CLOSED and self.closure_reason is None:
            raise _fail(KeyworkingCase, ("closure_reason",), "is required for a closed case", None)
        if phase is not KeyworkingPhase.CLOSED and self.closure_reason is not None:
            raise _fail(KeyworkingCase, ("closure_reason",), "is only for a closed case", self.closure_reason)
        if phase in STAFFED_PHASES and not self.keyworkers:
            raise _fail(KeyworkingCase, ("keyworkers",), f"needs one or two keyworkers in the {phase.value} phase", [])
        if phase is KeyworkingPhase.REFERRED and self.keyworkers:
            raise _fail(KeyworkingCase, ("keyworkers",), "must be empty before allocation", None)
        return self

    @property
    def phase(self) -> KeyworkingPhase:
        return self.history[-1].phase

    @property
    def phase_since(self) -> date:
        return self.history[-1].start

    @property
    def cycle(self) -> int | None:
        return self.history[-1].cycle

    @property
    def referred_on(self) -> date:
        return self.history[0].start


# -- care teams -----------------------------------------------------------------------------------------------------


class CareTeamMember(Record):
    """One person's membership of a young person's care team: role, agency and period."""

    role: CareTeamRole
    member: PersonRef
    agency: Agency | None = None
    start: date
    end: date | None = None
    change_reason: KeyworkerChangeReason | None = Field(
        default=None, description="Why this keyworker replaced the previous one"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.end is not None and self.end < self.start:
            raise _fail(CareTeamMember, ("end",), "is before start", self.end)
        if self.agency is not None and self.member.resource_type in ("RelatedPerson", "Patient"):
            # FHIR ctm-1: onBehalfOf only for a professional member.
            raise _fail(CareTeamMember, ("agency",), "is for professionals, not family or the young person", None)
        if self.change_reason is not None and self.role is not CareTeamRole.KEYWORKER:
            raise _fail(CareTeamMember, ("change_reason",), "is recorded for keyworkers only", self.change_reason)
        return self

    def active_on(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day < self.end)


class CareTeam(Record):
    """The professionals and family around a young person, across health, social care and education."""

    id: RecordId | None = None
    person_id: RecordId
    name: Name | None = None
    members: tuple[CareTeamMember, ...]

    @model_validator(mode="after")
    def _at_most_two_keyworkers(self) -> Self:
        if not self.members:
            raise _fail(CareTeam, ("members",), "needs at least one member", [])
        keyworkers = [(i, m) for i, m in enumerate(self.members) if m.role is CareTeamRole.KEYWORKER]
        for i, member in keyworkers:
            at_once = [j for j, other in keyworkers if other.active_on(member.start)]
            if len(at_once) > 2:
                raise _fail(
                    CareTeam,
                    ("members", i, "start"),
                    f"would give {len(at_once)} keyworkers at once on {member.start.isoformat()}; the most is two",
                    member.start,
                )
        return self


# -- contacts -------------------------------------------------------------------------------------------------------


class MeetingStatus(StrEnum):
    """planned, finished (took place) or cancelled (FHIR Encounter.status codes)."""

    PLANNED = "planned"
    FINISHED = "finished"
    CANCELLED = "cancelled"


class Attendee(Record):
    """Someone who took part in a contact or meeting besides the young person, with their role if they have one."""

    person: Participant
    role: CareTeamRole | None = None


class Contact(Record):
    """A keyworking contact: a session, a visit, a call, group or detached work.

    ``views`` is what the young person said. It is sensitive: it maps to its own Observation marked restricted in
    ``meta.security``, so that sharing rules can drop it while the contact itself is shared.
    """

    id: RecordId | None = None
    person_id: RecordId
    case_id: RecordId | None = None
    contact_type: ContactType
    status: MeetingStatus = MeetingStatus.FINISHED
    start: AwareDatetime
    end: AwareDatetime | None = None
    place: Name | None = None
    participants: tuple[Attendee, ...] = ()
    views: Text | None = Field(default=None, description="The young person's views (sensitive)")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.end is not None and self.end < self.start:
            raise _fail(Contact, ("end",), "is before start", self.end.isoformat())
        return self


# -- C(E)TRs and LAEP meetings ---------------------------------------------------------------------------------------


class Panel(Record):
    """A C(E)TR panel: a chair (commissioner-led), an expert by experience and a clinical expert.

    A LAEP meeting has a chair and no independent experts.
    """

    chair: Professional
    expert_by_experience: Participant | None = None
    clinical_expert: Professional | None = None


class KeyQuestionAnswers(Record):
    """The panel's answers to the four key questions."""

    is_safe: Text | None = Field(default=None, description="Is the person safe?")
    current_care: Text | None = Field(default=None, description="What is their current care like?")
    future_plan: Text | None = Field(default=None, description="Is there a plan for their future?")
    needs_hospital: Text | None = Field(
        default=None, description="Do they need to be in hospital for their care and treatment? (the discussion)"
    )

    def is_empty(self) -> bool:
        return all(v is None for v in (self.is_safe, self.current_care, self.future_plan, self.needs_hospital))


class RecommendationStatus(StrEnum):
    """requested → accepted → in-progress → completed, or cancelled, or failed (FHIR Task.status codes)."""

    REQUESTED = "requested"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class Recommendation(Record):
    """A SMART recommendation: what, a named owner in an agency, a due date, a status the owner updates."""

    id: ResourceId | None = None
    text: Text
    owner: PersonRef
    owner_agency: Agency
    due: date
    status: RecommendationStatus = RecommendationStatus.REQUESTED


class ReviewMeeting(Record):
    """A community, post-admission or inpatient C(E)TR, or a LAEP meeting, with its outcome and recommendations.

    ``needs_hospital`` is the outcome: does the person need to be in hospital for their care and treatment?
    ``consent_to_share`` records consent (or a best-interests decision) to share information with the panel.
    """

    id: RecordId | None = None
    person_id: RecordId
    register_entry_id: RecordId | None = None
    case_id: RecordId | None = None
    meeting_type: ReviewType
    status: MeetingStatus = MeetingStatus.FINISHED
    start: AwareDatetime
    end: AwareDatetime | None = None
    panel: Panel
    attendees: tuple[Attendee, ...] = ()
    consent_to_share: ConsentDecision | None = None
    answers: KeyQuestionAnswers = KeyQuestionAnswers()
    needs_hospital: bool | None = None
    recommendations: tuple[Recommendation, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.meeting_type not in MEETING_TYPES:
            allowed = ", ".join(sorted(t.value for t in MEETING_TYPES))
            raise _fail(ReviewMeeting, ("meeting_type",), f"must be one of {allowed}", self.meeting_type)
        if self.case_id is not None and self.register_entry_id is None:
            # C(E)TRs and LAEPs arise from the register; the Encounter lists the entry first, then the case.
            raise _fail(ReviewMeeting, ("register_entry_id",), "is required when case_id is given", None)
        if self.end is not None and self.end < self.start:
            raise _fail(ReviewMeeting, ("end",), "is before start", self.end.isoformat())
        if self.meeting_type is ReviewType.LAEP:
            for name in ("expert_by_experience", "clinical_expert"):
                if getattr(self.panel, name) is not None:
                    raise _fail(ReviewMeeting, ("panel", name), "is not part of a LAEP meeting", None)
        if self.status is not MeetingStatus.FINISHED:
            if self.needs_hospital is not None:
                raise _fail(
                    ReviewMeeting, ("needs_hospital",), f"cannot be known for a {self.status.value} meeting", None
                )
            if self.recommendations:
                raise _fail(
                    ReviewMeeting, ("recommendations",), f"cannot come from a {self.status.value} meeting", None
                )
        # Task ids: the recommendation's own, or <meeting id>-rec-<n> (mappings.keyworking.review).
        ids = [r.id or (self.id and f"{self.id}-rec-{n}") for n, r in enumerate(self.recommendations, start=1)]
        ids = [i for i in ids if i]
        if len(ids) != len(set(ids)):
            raise _fail(ReviewMeeting, ("recommendations",), "has two recommendations with the same id", ids)
        return self


#: What each kind of Consent a record holds is for.
CONSENT_CATEGORY_OF: dict[str, ConsentCategory] = {
    "RegisterEntry": ConsentCategory.DSR_INCLUSION,
    "ReviewMeeting": ConsentCategory.CETR_INFORMATION_SHARING,
}
