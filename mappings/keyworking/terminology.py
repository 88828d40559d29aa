"""Our code systems as Python: each code with its display and definition, and the enums the records use.

Every enum's values are exactly the codes of one local CodeSystem under ``urls.code_system(<id>)``;
``CODE_SYSTEMS`` (id → concepts) is what ``scripts/build-profiles`` publishes as CodeSystem JSON, so the records,
the mappings and the published terminology cannot drift (a test checks the enums against the tables).

SNOMED CT appears only where domain.md marks a code verified (social worker 106328005, general practitioner
62247001, home visit 439708006, intellectual disability 110359009): those are *added* as a second coding next to
our local code, which stays the one the mappings read back. Everything else (keyworker, IRO, SENCO, C(E)TR types,
LAEP, autism) is local until its SNOMED CT UK Edition code is confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


class Concept(NamedTuple):
    """One code of a local CodeSystem (a tuple, so builders can read it as ``(code, display, definition)``)."""

    code: str
    display: str
    definition: str


@dataclass(frozen=True, slots=True)
class CodeSystemInfo:
    """The header of a published CodeSystem (its id is the key in ``CODE_SYSTEMS``)."""

    title: str
    description: str


# -- enums used by the records (values are the codes) ------------------------------------------------------------


class DsrRating(StrEnum):
    """Dynamic Support Register RAG rating (national wording as quoted by ICSs; domain.md section 1)."""

    BLUE = "blue"
    RED = "red"
    AMBER = "amber"
    GREEN = "green"


class EpisodeType(StrEnum):
    DSR = "dsr"
    KEYWORKING = "keyworking"


class RegisterStatus(StrEnum):
    """Where a Dynamic Support Register entry stands: referral → screening → (declined | on register) → closed."""

    REFERRAL = "referral"
    SCREENING = "screening"
    ON_REGISTER = "on-register"
    DECLINED = "declined"
    CLOSED = "closed"


class ServiceModel(StrEnum):
    NHS_LD_AUTISM = "nhs-ld-autism"
    CHILDRENS_HOME = "childrens-home"
    EXTRA_FAMILIAL_HARM = "extra-familial-harm"


class KeyworkingPhase(StrEnum):
    REFERRED = "referred"
    ALLOCATED = "allocated"
    INTENSIVE = "intensive"
    STEP_DOWN = "step-down"
    MONITORING = "monitoring"
    INPATIENT = "inpatient"
    TRANSITION = "transition"
    CLOSED = "closed"


class ClosureReason(StrEnum):
    GOALS_MET = "goals-met"
    MOVED_OUT_OF_AREA = "moved-out-of-area"
    TRANSFERRED_TO_ADULT_SERVICES = "transferred-to-adult-services"
    DECLINED = "declined"
    AGED_OUT = "aged-out"


class KeyworkerChangeReason(StrEnum):
    YOUNG_PERSON_ASKED = "young-person-asked"
    STAFF_LEFT_OR_ABSENT = "staff-left-or-absent"
    RELATIONSHIP_NOT_ESTABLISHED = "relationship-not-established"
    MANAGER_DECISION = "manager-decision"


class CareTeamRole(StrEnum):
    KEYWORKER = "keyworker"
    SOCIAL_WORKER = "social-worker"
    IRO = "iro"
    SENCO_OR_TEACHER = "senco-or-teacher"
    VIRTUAL_SCHOOL_HEAD = "virtual-school-head"
    CAMHS_CLINICIAN = "camhs-clinician"
    GP = "gp"
    NAMED_NURSE_LAC = "named-nurse-lac"
    YOUTH_JUSTICE_WORKER = "youth-justice-worker"
    PARENT_OR_CARER = "parent-or-carer"
    ADVOCATE = "advocate"


class ContactType(StrEnum):
    SESSION = "session"
    HOME_VISIT = "home-visit"
    HOSPITAL_VISIT = "hospital-visit"
    SCHOOL_VISIT = "school-visit"
    MONITORING_CALL = "monitoring-call"
    GROUP_WORK = "group-work"
    DETACHED_WORK = "detached-work"


class ReviewType(StrEnum):
    COMMUNITY_CETR = "community-cetr"
    POST_ADMISSION_CETR = "post-admission-cetr"
    INPATIENT_CETR = "inpatient-cetr"
    LAEP = "laep"
    DSR_REVIEW = "dsr-review"
    KEYWORKING_REVIEW = "keyworking-review"
    OVERSIGHT_VISIT = "oversight-visit"


#: The review types a C(E)TR/LAEP meeting record can have (the others are recorded by other services).
MEETING_TYPES: frozenset[ReviewType] = frozenset(
    {ReviewType.COMMUNITY_CETR, ReviewType.POST_ADMISSION_CETR, ReviewType.INPATIENT_CETR, ReviewType.LAEP}
)


class PanelRole(StrEnum):
    CHAIR = "chair"
    EXPERT_BY_EXPERIENCE = "expert-by-experience"
    CLINICAL_EXPERT = "clinical-expert"


class KeyQuestion(StrEnum):
    """The four key questions every C(E)TR asks (domain.md section 2)."""

    IS_SAFE = "is-safe"
    CURRENT_CARE = "current-care"
    FUTURE_PLAN = "future-plan"
    NEEDS_HOSPITAL = "needs-hospital"


class Diagnosis(StrEnum):
    LEARNING_DISABILITY = "learning-disability"
    AUTISM = "autism"


class ObservationCode(StrEnum):
    DSR_RATING = "dsr-rating"
    YOUNG_PERSONS_VIEWS = "young-persons-views"


class DocumentType(StrEnum):
    CETR_REPORT = "cetr-report"


class TaskType(StrEnum):
    CETR_RECOMMENDATION = "cetr-recommendation"
    OFFER_COMMUNITY_CETR = "offer-community-cetr"
    POST_ADMISSION_CETR = "post-admission-cetr"
    ROOT_CAUSE_ANALYSIS = "root-cause-analysis"
    INPATIENT_CETR = "inpatient-cetr"
    OVERSIGHT_VISIT = "oversight-visit"
    KEYWORKING_REVIEW = "keyworking-review"
    MONITORING_CONTACT = "monitoring-contact"


class TaskBusinessStatus(StrEnum):
    """Where a Task stands beyond its FHIR status (written by the overdue sweep)."""

    OVERDUE = "overdue"


class ConsentCategory(StrEnum):
    DSR_INCLUSION = "dsr-inclusion"
    CETR_INFORMATION_SHARING = "cetr-information-sharing"


class RecipientType(StrEnum):
    """The kinds of recipient an information-sharing consent names, as the sharing profiles know them."""

    NHS_PROVIDER = "nhs-provider"
    LOCAL_AUTHORITY = "local-authority"
    SCHOOL = "school"
    CHILDRENS_HOME = "childrens-home"
    YOUTH_JUSTICE = "youth-justice"


class SharingChoice(StrEnum):
    """What a provision of a consent says of its recipients (FHIR Consent.provision.type)."""

    PERMIT = "permit"
    DENY = "deny"


# -- the published tables ------------------------------------------------------------------------------------------

_RATING_DEFINITIONS = {
    DsrRating.BLUE: ("Blue", "Currently an inpatient in a mental-health hospital."),
    DsrRating.RED: (
        "Red",
        "Immediate risk of admission. The person or family is in crisis, and the risks are not being, or cannot be, "
        "managed in the community.",
    ),
    DsrRating.AMBER: (
        "Amber",
        "Immediate risk of admission without urgent intervention. There may be a significant risk of becoming "
        "mentally unwell and/or of family or placement breakdown.",
    ),
    DsrRating.GREEN: (
        "Green",
        "Some risks that could lead to admission, but they are currently managed effectively in the community.",
    ),
}


def _c(code: StrEnum, display: str, definition: str = "") -> Concept:
    return Concept(code.value, display, definition or display)


CODE_SYSTEM_INFO: dict[str, CodeSystemInfo] = {
    "dsr-rating": CodeSystemInfo(
        "Dynamic Support Register rating",
        "The RAG rating of a person on a Dynamic Support Register (national wording as quoted by ICSs).",
    ),
    "episode-type": CodeSystemInfo(
        "Keyworking episode type",
        "What an EpisodeOfCare records: a Dynamic Support Register entry or a keyworking case.",
    ),
    "register-status": CodeSystemInfo(
        "Dynamic Support Register entry status",
        "Where a register entry stands. Carried by EpisodeOfCare.status, one FHIR status per register status.",
    ),
    "service-model": CodeSystemInfo(
        "Keyworking service model",
        "The keyworking service model a case follows; each has its own cadence and phases.",
    ),
    "keyworking-phase": CodeSystemInfo(
        "Keyworking phase", "The phase of a keyworking case (EpisodeOfCare.status cannot carry it)."
    ),
    "closure-reason": CodeSystemInfo("Keyworking closure reason", "Why a keyworking case was closed."),
    "keyworker-change-reason": CodeSystemInfo("Keyworker change reason", "Why a young person's keyworker changed."),
    "care-team-role": CodeSystemInfo(
        "Keyworking care team role", "Roles in a young person's care team across health, social care and education."
    ),
    "contact-type": CodeSystemInfo("Keyworking contact type", "Kinds of keyworking contact."),
    "review-type": CodeSystemInfo(
        "Review type",
        "Kinds of review: C(E)TRs, LAEP meetings, register and keyworking reviews, oversight visits.",
    ),
    "panel-role": CodeSystemInfo(
        "C(E)TR panel role", "The roles on a C(E)TR panel (a LAEP meeting has a chair and no independent experts)."
    ),
    "cetr-key-question": CodeSystemInfo(
        "C(E)TR key question", "The four key questions every C(E)TR answers; sections of the C(E)TR report."
    ),
    "diagnosis": CodeSystemInfo(
        "Keyworking eligibility diagnosis",
        "Learning disability and autism, the diagnoses that make a young person eligible for the register and "
        "keyworking. Learning disability also carries SNOMED CT 110359009; autism stays local until its UK Edition "
        "code is confirmed.",
    ),
    "keyworking-observation": CodeSystemInfo("Keyworking observation", "What a keyworking Observation records."),
    "document-type": CodeSystemInfo("Keyworking document type", "Kinds of Composition the gateway writes."),
    "task-type": CodeSystemInfo("Keyworking task type", "Kinds of Task the gateway writes."),
    "task-business-status": CodeSystemInfo(
        "Keyworking task business status", "Where a Task stands beyond its FHIR status."
    ),
    "consent-category": CodeSystemInfo(
        "Keyworking consent category", "What a Consent covers: register inclusion or sharing for a C(E)TR."
    ),
}

CODE_SYSTEMS: dict[str, tuple[Concept, ...]] = {
    "dsr-rating": tuple(Concept(r.value, d, text) for r, (d, text) in _RATING_DEFINITIONS.items()),
    "episode-type": (
        _c(EpisodeType.DSR, "Dynamic Support Register entry"),
        _c(EpisodeType.KEYWORKING, "Keyworking case"),
    ),
    "register-status": (
        _c(RegisterStatus.REFERRAL, "Referral", "Referred to the register; waiting to be screened."),
        _c(RegisterStatus.SCREENING, "Screening", "Eligibility and risk being assessed."),
        _c(RegisterStatus.ON_REGISTER, "On register", "On the register, with a current rating."),
        _c(RegisterStatus.DECLINED, "Declined", "Not placed on the register (not eligible, or no consent)."),
        _c(RegisterStatus.CLOSED, "Closed", "Taken off the register."),
    ),
    "service-model": (
        _c(
            ServiceModel.NHS_LD_AUTISM,
            "NHS learning disability and autism keyworking",
            "NHS keyworking for children and young people (0-25) with a learning disability and/or autism on the "
            "Dynamic Support Register: allocation, intensive 12-week cycles each ending in a review, step-down, "
            "monthly monitoring for up to 12 months.",
        ),
        _c(
            ServiceModel.CHILDRENS_HOME,
            "Children's home key worker",
            "One or two key workers in a children's home: weekly sessions, placement plan review, a weekly update to "
            "the social worker, a link with the independent reviewing officer.",
        ),
        _c(
            ServiceModel.EXTRA_FAMILIAL_HARM,
            "Extra-familial harm / youth violence keyworking",
            "Keyworking for young people (10-20) at risk of extra-familial harm or youth violence: allocation, "
            "delivery, monitoring, transition.",
        ),
    ),
    "keyworking-phase": (
        _c(KeyworkingPhase.REFERRED, "Referred", "Referred from the register; waiting for allocation."),
        _c(KeyworkingPhase.ALLOCATED, "Allocated", "One or two named keyworkers allocated."),
        _c(KeyworkingPhase.INTENSIVE, "Intensive", "Intensive support in 12-week cycles, each ending in a review."),
        _c(KeyworkingPhase.STEP_DOWN, "Step-down", "Reduced support after an intensive cycle review."),
        _c(KeyworkingPhase.MONITORING, "Monitoring", "Monthly contact, for up to 12 months."),
        _c(KeyworkingPhase.INPATIENT, "Inpatient", "The person is in hospital (blue rating); keyworking continues."),
        _c(KeyworkingPhase.TRANSITION, "Transition", "Transition out of the service (extra-familial harm model)."),
        _c(KeyworkingPhase.CLOSED, "Closed", "The case is closed, with a reason."),
    ),
    "closure-reason": (
        _c(ClosureReason.GOALS_MET, "Goals met"),
        _c(ClosureReason.MOVED_OUT_OF_AREA, "Moved out of area"),
        _c(ClosureReason.TRANSFERRED_TO_ADULT_SERVICES, "Transferred to adult services"),
        _c(ClosureReason.DECLINED, "Declined"),
        _c(ClosureReason.AGED_OUT, "Aged out at 25"),
    ),
    "keyworker-change-reason": (
        _c(KeyworkerChangeReason.YOUNG_PERSON_ASKED, "The young person asked"),
        _c(KeyworkerChangeReason.STAFF_LEFT_OR_ABSENT, "Staff left or long absence"),
        _c(KeyworkerChangeReason.RELATIONSHIP_NOT_ESTABLISHED, "Relationship not established"),
        _c(KeyworkerChangeReason.MANAGER_DECISION, "Manager's decision"),
    ),
    "care-team-role": (
        _c(CareTeamRole.KEYWORKER, "Keyworker"),
        _c(CareTeamRole.SOCIAL_WORKER, "Social worker"),
        _c(CareTeamRole.IRO, "Independent reviewing officer"),
        _c(CareTeamRole.SENCO_OR_TEACHER, "SENCO or teacher"),
        _c(CareTeamRole.VIRTUAL_SCHOOL_HEAD, "Virtual school head"),
        _c(CareTeamRole.CAMHS_CLINICIAN, "CAMHS/CYPMHS clinician"),
        _c(CareTeamRole.GP, "General practitioner"),
        _c(CareTeamRole.NAMED_NURSE_LAC, "Named nurse for looked-after children"),
        _c(CareTeamRole.YOUTH_JUSTICE_WORKER, "Youth justice worker"),
        _c(CareTeamRole.PARENT_OR_CARER, "Parent or carer"),
        _c(CareTeamRole.ADVOCATE, "Advocate"),
    ),
    "contact-type": (
        _c(ContactType.SESSION, "Keyworking session"),
        _c(ContactType.HOME_VISIT, "Home visit"),
        _c(ContactType.HOSPITAL_VISIT, "Hospital visit"),
        _c(ContactType.SCHOOL_VISIT, "School visit"),
        _c(ContactType.MONITORING_CALL, "Monitoring call"),
        _c(ContactType.GROUP_WORK, "Group work"),
        _c(ContactType.DETACHED_WORK, "Detached work"),
    ),
    "review-type": (
        _c(
            ReviewType.COMMUNITY_CETR, "Community C(E)TR", "Care (education) and treatment review before any admission."
        ),
        _c(ReviewType.POST_ADMISSION_CETR, "Post-admission C(E)TR", "Held only if there was no community review."),
        _c(ReviewType.INPATIENT_CETR, "Inpatient C(E)TR", "Every 3 months for children and young people."),
        _c(
            ReviewType.LAEP,
            "Local Area Emergency Protocol meeting",
            "When things move too fast for a community C(E)TR.",
        ),
        _c(ReviewType.DSR_REVIEW, "Dynamic Support Register review"),
        _c(ReviewType.KEYWORKING_REVIEW, "Keyworking 12-week review"),
        _c(ReviewType.OVERSIGHT_VISIT, "Commissioner oversight visit"),
    ),
    "panel-role": (
        _c(PanelRole.CHAIR, "Chair", "Chairs the review (commissioner-led)."),
        _c(PanelRole.EXPERT_BY_EXPERIENCE, "Expert by experience"),
        _c(PanelRole.CLINICAL_EXPERT, "Clinical expert"),
    ),
    "cetr-key-question": (
        _c(KeyQuestion.IS_SAFE, "Is the person safe?"),
        _c(KeyQuestion.CURRENT_CARE, "What is their current care like?"),
        _c(KeyQuestion.FUTURE_PLAN, "Is there a plan for their future?"),
        _c(KeyQuestion.NEEDS_HOSPITAL, "Do they need to be in hospital for their care and treatment?"),
    ),
    "diagnosis": (
        _c(Diagnosis.LEARNING_DISABILITY, "Learning disability"),
        _c(Diagnosis.AUTISM, "Autism"),
    ),
    "keyworking-observation": (
        _c(ObservationCode.DSR_RATING, "Dynamic Support Register rating", "A rating decision on a register entry."),
        _c(
            ObservationCode.YOUNG_PERSONS_VIEWS,
            "The young person's views",
            "What the young person said during a contact, in their words where possible (sensitive).",
        ),
    ),
    "document-type": (_c(DocumentType.CETR_REPORT, "C(E)TR or LAEP meeting report"),),
    "task-type": (
        _c(TaskType.CETR_RECOMMENDATION, "C(E)TR recommendation", "A SMART recommendation with a named owner."),
        _c(
            TaskType.OFFER_COMMUNITY_CETR,
            "Offer a community C(E)TR (or LAEP if urgent)",
            "Raised when a register entry is rated red: every young person at risk is offered a community C(E)TR.",
        ),
        _c(
            TaskType.POST_ADMISSION_CETR,
            "Hold a post-admission C(E)TR",
            "Raised when a young person is admitted (rated blue) with no community C(E)TR before the admission.",
        ),
        _c(
            TaskType.ROOT_CAUSE_ANALYSIS,
            "Root-cause analysis of an admission without a community C(E)TR",
            "Admission without a community C(E)TR is exceptional and is reviewed.",
        ),
        _c(
            TaskType.INPATIENT_CETR,
            "Hold an inpatient C(E)TR",
            "Inpatient C(E)TRs recur while the person is in hospital (children and young people every 3 months).",
        ),
        _c(
            TaskType.OVERSIGHT_VISIT,
            "Commissioner oversight visit",
            "Visits to an inpatient placed out of area (children every 6 weeks, adults every 8).",
        ),
        _c(
            TaskType.KEYWORKING_REVIEW,
            "12-week keyworking review",
            "The review that ends an intensive keyworking cycle: continue or step down.",
        ),
        _c(
            TaskType.MONITORING_CONTACT,
            "Monthly monitoring contact",
            "A keyworker's contact with a young person whose case is in monitoring.",
        ),
    ),
    "task-business-status": (
        _c(
            TaskBusinessStatus.OVERDUE,
            "Overdue",
            "Still open after its due date (restriction.period.end); set and cleared by the gateway's overdue sweep.",
        ),
    ),
    "consent-category": (
        _c(ConsentCategory.DSR_INCLUSION, "Inclusion on the Dynamic Support Register"),
        _c(ConsentCategory.CETR_INFORMATION_SHARING, "Sharing information with a C(E)TR or LAEP panel"),
    ),
}

#: Verified SNOMED CT equivalents, added as a second coding: code system id → local code → (SCTID, display).
SNOMED_EQUIVALENTS: dict[str, dict[str, tuple[str, str]]] = {
    "care-team-role": {
        CareTeamRole.SOCIAL_WORKER.value: ("106328005", "Social worker"),
        CareTeamRole.GP.value: ("62247001", "General practitioner"),
    },
    "contact-type": {ContactType.HOME_VISIT.value: ("439708006", "Home visit")},
    "diagnosis": {Diagnosis.LEARNING_DISABILITY.value: ("110359009", "Intellectual disability")},
}

#: Which code system each enum's values belong to.
ENUM_SYSTEMS: dict[type[StrEnum], str] = {
    DsrRating: "dsr-rating",
    EpisodeType: "episode-type",
    RegisterStatus: "register-status",
    ServiceModel: "service-model",
    KeyworkingPhase: "keyworking-phase",
    ClosureReason: "closure-reason",
    KeyworkerChangeReason: "keyworker-change-reason",
    CareTeamRole: "care-team-role",
    ContactType: "contact-type",
    ReviewType: "review-type",
    PanelRole: "panel-role",
    KeyQuestion: "cetr-key-question",
    Diagnosis: "diagnosis",
    ObservationCode: "keyworking-observation",
    DocumentType: "document-type",
    TaskType: "task-type",
    TaskBusinessStatus: "task-business-status",
    ConsentCategory: "consent-category",
}

_CONCEPTS: dict[tuple[str, str], Concept] = {
    (system_id, concept.code): concept for system_id, concepts in CODE_SYSTEMS.items() for concept in concepts
}


def concept(code: StrEnum) -> Concept:
    """The published concept (display, definition) of an enum member."""
    return _CONCEPTS[(ENUM_SYSTEMS[type(code)], code.value)]


def display(code: StrEnum) -> str:
    return concept(code).display


def snomed_equivalent(code: StrEnum) -> tuple[str, str] | None:
    """The verified SNOMED CT (SCTID, display) for a local code, if there is one."""
    return SNOMED_EQUIVALENTS.get(ENUM_SYSTEMS[type(code)], {}).get(code.value)


# -- service models: cadence and phases ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceModelRules:
    """How a service model runs: which phases it uses, its contact cadence and who it is for.

    The NHS figures (12-week cycles, monthly monitoring for up to 12 months) come from the issue and domain.md; the
    children's home and extra-familial harm cadences come from the brief only (domain.md section 6 says they are
    unverified), so an ICS can override them in its settings.
    """

    phases: frozenset[KeyworkingPhase]
    max_keyworkers: int
    contact_every_days: int
    cycle_weeks: int | None
    monitoring_max_months: int | None
    min_age: int
    max_age: int
    #: What the field calls each phase, where it differs from our code's display.
    phase_labels: dict[KeyworkingPhase, str]


_P = KeyworkingPhase

SERVICE_MODELS: dict[ServiceModel, ServiceModelRules] = {
    ServiceModel.NHS_LD_AUTISM: ServiceModelRules(
        phases=frozenset(
            {_P.REFERRED, _P.ALLOCATED, _P.INTENSIVE, _P.STEP_DOWN, _P.MONITORING, _P.INPATIENT, _P.CLOSED}
        ),
        max_keyworkers=2,
        contact_every_days=7,
        cycle_weeks=12,
        monitoring_max_months=12,
        min_age=0,
        max_age=25,
        phase_labels={},
    ),
    ServiceModel.CHILDRENS_HOME: ServiceModelRules(
        phases=frozenset({_P.REFERRED, _P.ALLOCATED, _P.INTENSIVE, _P.CLOSED}),
        max_keyworkers=2,
        contact_every_days=7,
        cycle_weeks=None,
        monitoring_max_months=None,
        min_age=0,
        max_age=18,
        phase_labels={_P.INTENSIVE: "Weekly key work sessions"},
    ),
    ServiceModel.EXTRA_FAMILIAL_HARM: ServiceModelRules(
        phases=frozenset({_P.REFERRED, _P.ALLOCATED, _P.INTENSIVE, _P.MONITORING, _P.TRANSITION, _P.CLOSED}),
        max_keyworkers=2,
        contact_every_days=7,
        cycle_weeks=12,
        monitoring_max_months=12,
        min_age=10,
        max_age=20,
        phase_labels={_P.ALLOCATED: "Allocation", _P.INTENSIVE: "Delivery"},
    ),
}


def phase_label(model: ServiceModel, phase: KeyworkingPhase) -> str:
    """The name a service model's practitioners use for a phase (e.g. "Delivery" for extra-familial harm)."""
    return SERVICE_MODELS[model].phase_labels.get(phase, display(phase))
