"""ReviewMeeting (C(E)TR or LAEP) ⇄ Encounter + Composition + Task per recommendation + Consent.

The choice, and why: the meeting itself is an Encounter (our CETRReviewEncounter profile): ``type`` the review
type, ``period`` when, ``episodeOfCare`` the register entry and the keyworking case, ``participant`` the panel
(our panel-role codes: chair, expert by experience, clinical expert) then the attendees, and the outcome ("does
the person need to be in hospital?") in the ``needs-hospital`` extension, so that it is searchable and visible
without opening a document. What the panel *wrote* (the answers to the four key questions) is a linked
Composition (``<id>-report``, the C(E)TR report; domain.md section 8): one section per answered key question
(code from our cetr-key-question system, the answer as narrative) and a "Recommendations" section whose entries
list the Tasks in order. A document can be shared, signed and pointed at from the NRL; extensions cannot.

Each recommendation is a Task (our CETRRecommendationTask profile): ``description`` the text, ``owner`` the named
person and the ``owner-agency`` extension their agency, ``restriction.period.end`` the due date, ``status`` what
the owner updates, ``focus`` the report, ``encounter`` the meeting. A recommendation without an id gets
``<meeting id>-rec-<n>``. Consent to share with the panel is a Consent (``<id>-consent``, category
cetr-information-sharing).

The Composition is written when there is something in it (an answer or a recommendation).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from mappings.keyworking import consent as consent_mapping
from mappings.keyworking import urls
from mappings.keyworking.contact import encounter_class
from mappings.keyworking.elements import (
    Resource,
    agency_ref,
    codeable,
    datetime_period,
    ext,
    ext_value,
    fhir_date,
    fhir_datetime,
    find_code,
    has_code,
    meta,
    narrative,
    of_type,
    person_ref,
    read_agency,
    read_code,
    read_date,
    read_datetime,
    read_narrative,
    read_person,
    read_ref_id,
    ref,
    require_id,
    the_one,
)
from mappings.keyworking.errors import NotOurShape
from mappings.keyworking.participants import attendee_from_fhir, attendee_to_fhir, is_attender
from mappings.keyworking.records import KeyQuestionAnswers, MeetingStatus, PersonRef, Recommendation, ReviewMeeting
from mappings.keyworking.terminology import (
    ConsentCategory,
    DocumentType,
    KeyQuestion,
    PanelRole,
    ReviewType,
    TaskType,
    display,
)

#: Which answer field holds which key question, in the order the report's sections follow.
ANSWER_FIELDS: dict[KeyQuestion, str] = {
    KeyQuestion.IS_SAFE: "is_safe",
    KeyQuestion.CURRENT_CARE: "current_care",
    KeyQuestion.FUTURE_PLAN: "future_plan",
    KeyQuestion.NEEDS_HOSPITAL: "needs_hospital",
}
PANEL_FIELDS: dict[PanelRole, str] = {
    PanelRole.CHAIR: "chair",
    PanelRole.EXPERT_BY_EXPERIENCE: "expert_by_experience",
    PanelRole.CLINICAL_EXPERT: "clinical_expert",
}
RECOMMENDATIONS_TITLE = "Recommendations"


def report_id(meeting_id: str) -> str:
    return f"{meeting_id}-report"


def consent_id(meeting_id: str) -> str:
    return f"{meeting_id}-consent"


def recommendation_id(meeting_id: str, n: int) -> str:
    """The Task id of the n-th recommendation (1 for the first) when it has none of its own."""
    return f"{meeting_id}-rec-{n}"


def _class(meeting_type: ReviewType) -> dict[str, str]:
    if meeting_type is ReviewType.INPATIENT_CETR:
        return encounter_class("IMP", "inpatient encounter")
    return encounter_class("AMB", "ambulatory")


def to_fhir(meeting: ReviewMeeting) -> list[Resource]:
    """The Encounter, then the Composition (if any), the Tasks in order, and the Consent."""
    mid = require_id(meeting.id, "review meeting")
    out = [_encounter(meeting, mid)]
    task_ids = [r.id or recommendation_id(mid, n) for n, r in enumerate(meeting.recommendations, start=1)]
    if not meeting.answers.is_empty() or meeting.recommendations:
        out.append(_composition(meeting, mid, task_ids))
        out += [_task(meeting, mid, r, tid) for r, tid in zip(meeting.recommendations, task_ids, strict=True)]
    if meeting.consent_to_share is not None:
        out.append(
            consent_mapping.to_fhir(
                meeting.consent_to_share,
                consent_id=consent_id(mid),
                person_id=meeting.person_id,
                category=ConsentCategory.CETR_INFORMATION_SHARING,
            )
        )
    return out


def _encounter(meeting: ReviewMeeting, mid: str) -> Resource:
    encounter: Resource = {"resourceType": "Encounter", "id": mid, "meta": meta(urls.CETR_REVIEW_ENCOUNTER)}
    if meeting.needs_hospital is not None:
        encounter["extension"] = [ext(urls.EXT_NEEDS_HOSPITAL, "valueBoolean", meeting.needs_hospital)]
    encounter["status"] = meeting.status.value
    encounter["class"] = _class(meeting.meeting_type)
    encounter["type"] = [codeable(meeting.meeting_type)]
    encounter["subject"] = ref("Patient", meeting.person_id)
    episodes = []
    if meeting.register_entry_id is not None:
        episodes.append(ref("EpisodeOfCare", meeting.register_entry_id))
    if meeting.case_id is not None:
        episodes.append(ref("EpisodeOfCare", meeting.case_id))
    if episodes:
        encounter["episodeOfCare"] = episodes
    participants = []
    for role, field in PANEL_FIELDS.items():
        member: PersonRef | None = getattr(meeting.panel, field)
        if member is not None:
            participants.append({"type": [codeable(role)], "individual": person_ref(member)})
    participants += [attendee_to_fhir(a) for a in meeting.attendees]
    encounter["participant"] = participants
    encounter["period"] = datetime_period(meeting.start, meeting.end)
    return encounter


def _composition(meeting: ReviewMeeting, mid: str, task_ids: list[str]) -> Resource:
    sections: list[Resource] = []
    for question, field in ANSWER_FIELDS.items():
        answer: str | None = getattr(meeting.answers, field)
        if answer is not None:
            sections.append({"title": display(question), "code": codeable(question), "text": narrative(answer)})
    if task_ids:
        sections.append({"title": RECOMMENDATIONS_TITLE, "entry": [ref("Task", tid) for tid in task_ids]})
    return {
        "resourceType": "Composition",
        "id": report_id(mid),
        "meta": meta(urls.UKCORE_COMPOSITION),
        "status": "final" if meeting.status is MeetingStatus.FINISHED else "preliminary",
        "type": codeable(DocumentType.CETR_REPORT),
        "subject": ref("Patient", meeting.person_id),
        "encounter": ref("Encounter", mid),
        "date": fhir_datetime(meeting.start),
        "author": [person_ref(meeting.panel.chair)],
        "title": f"{display(meeting.meeting_type)} report",
        "section": sections,
    }


def _task(meeting: ReviewMeeting, mid: str, rec: Recommendation, tid: str) -> Resource:
    return {
        "resourceType": "Task",
        "id": tid,
        "meta": meta(urls.CETR_RECOMMENDATION_TASK),
        "extension": [ext(urls.EXT_OWNER_AGENCY, "valueReference", agency_ref(rec.owner_agency))],
        "status": rec.status.value,
        "intent": "plan",
        "code": codeable(TaskType.CETR_RECOMMENDATION),
        "description": rec.text,
        "focus": ref("Composition", report_id(mid)),
        "for": ref("Patient", meeting.person_id),
        "encounter": ref("Encounter", mid),
        "authoredOn": fhir_datetime(meeting.start),
        "requester": person_ref(meeting.panel.chair),
        "owner": person_ref(rec.owner),
        "restriction": {"period": {"end": fhir_date(rec.due)}},
    }


def recommendation_from_fhir(task: Resource) -> Recommendation:
    """One recommendation from its Task (what an owner's status update reads back)."""
    try:
        return Recommendation.model_validate(_recommendation(task))
    except ValidationError as exc:
        raise NotOurShape("Task", str(exc)) from None


def _recommendation(task: Resource) -> dict[str, Any]:
    path = f"Task/{task.get('id')}"
    agency = ext_value(task, urls.EXT_OWNER_AGENCY, "valueReference")
    if agency is None:
        raise NotOurShape(f"{path}.extension", "has no owner-agency extension")
    return {
        "id": task.get("id"),
        "text": task.get("description"),
        "owner": read_person(task.get("owner"), f"{path}.owner"),
        "owner_agency": read_agency(agency, f"{path}.extension(owner-agency)"),
        "due": read_date(task.get("restriction", {}).get("period", {}).get("end"), f"{path}.restriction.period.end"),
        "status": task.get("status"),
    }


def from_fhir(resources: Iterable[Resource]) -> ReviewMeeting:
    """The meeting an Encounter, its report, its recommendation Tasks and its sharing Consent describe."""
    resources = list(resources)
    encounter = the_one(resources, "Encounter")
    mid = str(encounter.get("id"))
    types = encounter.get("type", ())
    if len(types) != 1:
        raise NotOurShape("Encounter.type", "a review meeting has exactly one type")
    p = encounter.get("period", {})
    record: dict[str, Any] = {
        "id": mid,
        "person_id": read_ref_id(encounter.get("subject"), "Patient", "Encounter.subject"),
        "meeting_type": read_code(types[0], ReviewType, "Encounter.type[0]"),
        "status": encounter.get("status"),
        "start": read_datetime(p.get("start"), "Encounter.period.start"),
    }
    if "end" in p:
        record["end"] = read_datetime(p["end"], "Encounter.period.end")
    _read_episodes(encounter, record)
    panel: dict[str, Any] = {}
    attendees = []
    for i, participant in enumerate(encounter.get("participant", ())):
        path = f"Encounter.participant[{i}]"
        role = next((r for t in participant.get("type", ()) if (r := find_code(t, PanelRole)) is not None), None)
        if role is not None:
            panel[PANEL_FIELDS[role]] = read_person(participant.get("individual"), f"{path}.individual")
        elif is_attender(participant):
            attendees.append(attendee_from_fhir(participant, path))
    record["panel"] = panel
    record["attendees"] = attendees
    needs_hospital = ext_value(encounter, urls.EXT_NEEDS_HOSPITAL, "valueBoolean")
    if needs_hospital is not None:
        record["needs_hospital"] = needs_hospital
    reports = [
        c
        for c in of_type(resources, "Composition")
        if has_code(c.get("type"), DocumentType.CETR_REPORT)
        and c.get("encounter", {}).get("reference") == f"Encounter/{mid}"
    ]
    if len(reports) > 1:
        raise NotOurShape("Composition", f"more than one report for Encounter/{mid}")
    if reports:
        record["answers"], order = _read_report(reports[0])
        tasks = {
            str(t.get("id")): t
            for t in of_type(resources, "Task")
            if has_code(t.get("code"), TaskType.CETR_RECOMMENDATION)
            and t.get("encounter", {}).get("reference") == f"Encounter/{mid}"
        }
        listed = [tasks[tid] for tid in order if tid in tasks]
        unlisted = [tasks[tid] for tid in sorted(tasks) if tid not in order]
        record["recommendations"] = [_recommendation(t) for t in listed + unlisted]
    for consent in of_type(resources, "Consent"):
        if consent_mapping.category_of(consent) is ConsentCategory.CETR_INFORMATION_SHARING:
            record["consent_to_share"] = consent_mapping.from_fhir(consent)
    try:
        return ReviewMeeting.model_validate(record)
    except ValidationError as exc:
        raise NotOurShape("Encounter", str(exc)) from None


def _read_episodes(encounter: Resource, record: dict[str, Any]) -> None:
    """``episodeOfCare`` lists the register entry, then the case (a meeting naming a case names its entry too)."""
    episodes = encounter.get("episodeOfCare", ())
    ids = [read_ref_id(e, "EpisodeOfCare", f"Encounter.episodeOfCare[{i}]") for i, e in enumerate(episodes)]
    if len(ids) > 2:
        raise NotOurShape("Encounter.episodeOfCare", "a meeting links at most a register entry and a case")
    if ids:
        record["register_entry_id"] = ids[0]
    if len(ids) == 2:
        record["case_id"] = ids[1]


def _read_report(report: Resource) -> tuple[KeyQuestionAnswers, list[str]]:
    answers: dict[str, str] = {}
    order: list[str] = []
    for i, section in enumerate(report.get("section", ())):
        path = f"Composition.section[{i}]"
        question = find_code(section.get("code"), KeyQuestion)
        if question is not None:
            answers[ANSWER_FIELDS[question]] = read_narrative(section.get("text"), f"{path}.text")
        elif section.get("title") == RECOMMENDATIONS_TITLE:
            order = [read_ref_id(e, "Task", f"{path}.entry[{j}]") for j, e in enumerate(section.get("entry", ()))]
    return KeyQuestionAnswers.model_validate(answers), order
