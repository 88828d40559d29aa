"""The summary's sections, read from the person's FHIR resources (already reduced to the caller's sharing profile).

Pure: resources in, :class:`Section` values out. Each section holds the tables a person reads (the HTML page and
the Composition's narrative are both drawn from them) and the resources it cites (the Composition's entries). A
section whose records the caller's profile leaves out says so rather than looking empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.summary.fhirtext import (
    Resource,
    agency,
    code_in,
    concept,
    extension_value,
    first_concept,
    human_name,
    identifier_value,
    nhs_number_text,
    period_text,
    reference_name,
    sort_key,
    when,
)
from mappings.keyworking import urls
from mappings.keyworking.terminology import EpisodeType, ObservationCode, TaskType

#: How many of the most recent contacts, rating decisions, review tasks and recommendations a summary shows.
RECENT_CONTACTS = 8
RECENT_RATINGS = 5
REVIEW_TASKS = 6
RECOMMENDATIONS = 10

OPEN_TASK = frozenset({"draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold"})


@dataclass(frozen=True, slots=True)
class Table:
    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    title: str
    tables: tuple[Table, ...]
    entries: tuple[Resource, ...]
    notes: tuple[str, ...] = ()
    #: The caller's sharing profile leaves out records this section would show.
    withheld: bool = False

    @property
    def empty(self) -> bool:
        return not any(t.rows for t in self.tables)


def build_sections(resources: Sequence[Resource], *, withheld_types: frozenset[str] = frozenset()) -> list[Section]:
    """The seven sections, in reading order, from one person's resources."""
    by_type: dict[str, list[Resource]] = {}
    for resource in resources:
        by_type.setdefault(str(resource.get("resourceType")), []).append(resource)

    def of(res_type: str) -> list[Resource]:
        return by_type.get(res_type, [])

    def held_back(*types: str) -> bool:
        return any(t in withheld_types for t in types)

    return [
        young_person(of("Patient"), of("Condition"), withheld=held_back("Condition")),
        care_team(of("CareTeam"), of("Organization"), withheld=held_back("CareTeam")),
        register(of("EpisodeOfCare"), of("Flag"), of("Observation"), withheld=held_back("Flag", "Observation")),
        keyworking(of("EpisodeOfCare"), of("Task"), withheld=held_back("EpisodeOfCare")),
        contacts(of("Encounter"), of("Observation"), withheld=held_back("Encounter")),
        reviews(of("Encounter"), of("Task"), withheld=held_back("Task")),
        consent(of("Consent"), withheld=held_back("Consent")),
    ]


# -- the young person -----------------------------------------------------------------------------------------------


def young_person(patients: Sequence[Resource], conditions: Sequence[Resource], *, withheld: bool) -> Section:
    rows: list[tuple[str, str]] = []
    for patient in patients[:1]:
        rows.append(("Name", human_name(patient)))
        rows.append(("Date of birth", when(patient.get("birthDate"))))
        nhs = identifier_value(patient, urls.NHS_NUMBER)
        if nhs:
            rows.append(("NHS number", nhs_number_text(nhs)))
        gps = [agency(gp) for gp in patient.get("generalPractitioner", ())]
        if gps:
            rows.append(("GP practice", ", ".join(gps)))
        looked_after = extension_value(patient, urls.EXT_LOOKED_AFTER, "valueBoolean")
        if looked_after is not None:
            rows.append(("Looked after", "Yes" if looked_after else "No"))
    diagnoses = tuple(
        (concept(c.get("code")), concept(c.get("verificationStatus")), concept(c.get("clinicalStatus")))
        for c in conditions
    )
    tables = [Table("About the young person", ("Item", "Detail"), tuple(rows))]
    if diagnoses:
        tables.append(Table("Diagnoses", ("Diagnosis", "Verification", "Status"), diagnoses))
    notes = ("Diagnoses are not shared with this organisation.",) if withheld else ()
    return Section(
        "young-person", "The young person", tuple(tables), (*patients[:1], *conditions), notes, withheld=withheld
    )


# -- the care team --------------------------------------------------------------------------------------------------


def care_team(teams: Sequence[Resource], organisations: Sequence[Resource] = (), *, withheld: bool) -> Section:
    """Who is involved, each with a contact route: the member's own telecom when a partner sent one, else their
    agency's (the Organization their ``onBehalfOf`` names, by reference or ODS code), else "through their agency".
    The Organizations whose contact details are shown are cited with the teams."""
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    directory = Agencies(organisations)
    cited: dict[str, Resource] = {}
    for team in teams:
        members = sorted(
            team.get("participant", ()),
            key=lambda p: (
                "end" in p.get("period", {}),
                code_in(p.get("role", ()), urls.CS_CARE_TEAM_ROLE) != "keyworker",
                first_concept(p.get("role")),
            ),
        )
        for member in members:
            period = member.get("period", {})
            organisation = directory.find(member.get("onBehalfOf"))
            route = _contact_route(member, organisation)
            if organisation is not None and route.startswith(THROUGH_AGENCY + ","):
                cited[f"Organization/{organisation.get('id')}"] = organisation
            rows.append(
                (
                    first_concept(member.get("role")),
                    reference_name(member.get("member")),
                    agency(member.get("onBehalfOf")),
                    route,
                    period_text(period) if "end" in period else f"since {when(period.get('start'))}",
                )
            )
        for telecom in team.get("telecom", ()):
            notes.append(f"{team.get('name') or 'Team'} contact: {_telecom_text(telecom)}")
    table = Table("Who is involved", ("Role", "Name", "Agency", "Contact route", "Involved"), tuple(rows))
    entries = (*teams, *cited.values())
    return Section("care-team", "Care team across agencies", (table,), entries, tuple(notes), withheld=withheld)


THROUGH_AGENCY = "through their agency"


class Agencies:
    """Organizations found by what a Reference holds: ``reference`` (``Organization/<id>``) or ``identifier``."""

    def __init__(self, organisations: Iterable[Resource]) -> None:
        self._by_reference: dict[str, Resource] = {}
        self._by_identifier: dict[tuple[str, str], Resource] = {}
        for org in organisations:
            self._by_reference.setdefault(f"Organization/{org.get('id')}", org)
            for identifier in org.get("identifier", ()):
                if isinstance(identifier, dict):
                    key = (str(identifier.get("system", "")), str(identifier.get("value", "")))
                    self._by_identifier.setdefault(key, org)

    def find(self, ref: Any) -> Resource | None:
        if not isinstance(ref, dict):
            return None
        if isinstance(ref.get("reference"), str):
            return self._by_reference.get(ref["reference"])
        identifier = ref.get("identifier")
        if isinstance(identifier, dict):
            return self._by_identifier.get((str(identifier.get("system", "")), str(identifier.get("value", ""))))
        return None


def _current_telecoms(resource: Resource) -> list[str]:
    """A resource's telecoms that have a value and have not ended, best ranked first, as text."""
    found = [
        t
        for t in resource.get("telecom", ())
        if isinstance(t, dict) and t.get("value") and "end" not in (t.get("period") or {})
    ]
    found.sort(key=lambda t: t.get("rank", 1_000_000) if isinstance(t.get("rank"), int) else 1_000_000)
    return [_telecom_text(t) for t in found]


def _contact_route(member: Resource, organisation: Resource | None = None) -> str:
    telecoms = _current_telecoms(member)  # not R4 core, but partners send it
    if telecoms:
        return "; ".join(telecoms)
    if not member.get("onBehalfOf"):
        return ""
    agency_telecoms = _current_telecoms(organisation) if organisation is not None else []
    if agency_telecoms:
        return f"{THROUGH_AGENCY}, {'; '.join(agency_telecoms)}"
    return THROUGH_AGENCY


def _telecom_text(telecom: Resource) -> str:
    system = str(telecom.get("system", "contact"))
    return f"{system}: {telecom.get('value', '')}"


# -- the register ---------------------------------------------------------------------------------------------------


def _is_register(episode: Resource) -> bool:
    return code_in(episode.get("type", ()), urls.CS_EPISODE_TYPE) == EpisodeType.DSR.value


def _is_rating(observation: Resource) -> bool:
    return code_in(observation.get("code"), urls.CS_OBSERVATION_CODE) == ObservationCode.DSR_RATING.value


def register(
    episodes: Sequence[Resource], flags: Sequence[Resource], observations: Sequence[Resource], *, withheld: bool
) -> Section:
    entries = [e for e in episodes if _is_register(e)]
    rows: list[tuple[str, str]] = []
    for entry in entries:
        rows.append(("Register status", str(entry.get("status", ""))))
        rows.append(("Managed by", agency(entry.get("managingOrganization"))))
        rows.append(("On the register", period_text(entry.get("period"))))
    for flag in (f for f in flags if f.get("status") == "active"):
        rows.insert(0, ("Current rating", concept(flag.get("code"))))
        rows.insert(1, ("Rated", when(flag.get("period", {}).get("start"))))
        rows.insert(2, ("Next rating review", when(extension_value(flag, urls.EXT_NEXT_REVIEW_DATE, "valueDate"))))
    ratings = sorted((o for o in observations if _is_rating(o)), key=lambda o: sort_key(o.get("effectiveDateTime")))
    recent = list(reversed(ratings))[:RECENT_RATINGS]
    history = tuple(
        (
            when(o.get("effectiveDateTime")),
            concept(o.get("valueCodeableConcept")),
            "; ".join(str(n.get("text", "")) for n in o.get("note", ())),
            ", ".join(reference_name(p) for p in o.get("performer", ())),
        )
        for o in recent
    )
    notes = (
        [f"Showing the latest {len(recent)} of {len(ratings)} rating decisions."] if len(ratings) > len(recent) else []
    )
    if withheld:
        notes.append("Register ratings are not shared with this organisation.")
    tables = (
        Table("Register rating", ("Item", "Detail"), tuple(rows)),
        Table("Recent rating decisions", ("Date", "Rating", "Reason", "By"), history),
    )
    return Section(
        "register", "Register rating and history", tables, (*entries, *flags, *recent), tuple(notes), withheld
    )


# -- keyworking -----------------------------------------------------------------------------------------------------


def _is_keyworking(episode: Resource) -> bool:
    return code_in(episode.get("type", ()), urls.CS_SERVICE_MODEL) is not None


def _is_recommendation(task: Resource) -> bool:
    return code_in(task.get("code"), urls.CS_TASK_TYPE) == TaskType.CETR_RECOMMENDATION.value


def _task_order(task: Resource) -> tuple[bool, str]:
    """Open tasks first, soonest due first."""
    due = task.get("restriction", {}).get("period", {}).get("end")
    return (task.get("status") not in OPEN_TASK, sort_key(due) or "9999")


def _task_status(task: Resource) -> str:
    status = str(task.get("status", ""))
    business = concept(task.get("businessStatus"))
    return f"{status} ({business})" if business else status


def keyworking(episodes: Sequence[Resource], tasks: Sequence[Resource], *, withheld: bool) -> Section:
    cases = [e for e in episodes if _is_keyworking(e)]
    rows: list[tuple[str, str]] = []
    for case in cases:
        phase = concept(extension_value(case, urls.EXT_KEYWORKING_PHASE, "valueCoding"))
        history = case.get("statusHistory", ())
        since = history[-1].get("period", {}).get("end") if history else case.get("period", {}).get("start")
        rows.append(("Phase", f"{phase} (since {when(since)})" if since else phase))
        rows.append(("Service model", first_concept(case.get("type"))))
        keyworkers = [reference_name(case.get("careManager"))] if case.get("careManager") else []
        co_keyworker = extension_value(case, urls.EXT_CO_KEYWORKER, "valueReference")
        if co_keyworker:
            keyworkers.append(reference_name(co_keyworker))
        rows.append(("Keyworker", ", ".join(keyworkers) or "not yet allocated"))
        if case.get("managingOrganization"):
            rows.append(("Keyworking service", agency(case.get("managingOrganization"))))
    review_tasks = sorted((t for t in tasks if not _is_recommendation(t)), key=_task_order)
    shown = review_tasks[:REVIEW_TASKS]
    next_due = next((t for t in shown if t.get("status") in OPEN_TASK), None)
    if next_due is not None:
        due = when(next_due.get("restriction", {}).get("period", {}).get("end"))
        rows.append(
            ("Next review", f"{concept(next_due.get('code'))}, due {due}" if due else concept(next_due.get("code")))
        )
    task_rows = tuple(
        (
            concept(t.get("code")) or str(t.get("description", "")),
            when(t.get("restriction", {}).get("period", {}).get("end")),
            _task_status(t),
        )
        for t in shown
    )
    notes = [f"Showing {len(shown)} of {len(review_tasks)} review tasks."] if len(review_tasks) > len(shown) else []
    if withheld:
        notes.append("The keyworking case is not shared with this organisation.")
    tables = (
        Table("Keyworking", ("Item", "Detail"), tuple(rows)),
        Table("Reviews and follow-up", ("Task", "Due", "Status"), task_rows),
    )
    return Section("keyworking", "Keyworking phase and next review", tables, (*cases, *shown), tuple(notes), withheld)


# -- contacts -------------------------------------------------------------------------------------------------------


def _is_contact(encounter: Resource) -> bool:
    return code_in(encounter.get("type", ()), urls.CS_REVIEW_TYPE) is None


def _views_by_encounter(observations: Iterable[Resource]) -> dict[str, Resource]:
    views: dict[str, Resource] = {}
    for o in observations:
        if code_in(o.get("code"), urls.CS_OBSERVATION_CODE) == ObservationCode.YOUNG_PERSONS_VIEWS.value:
            views[str(o.get("encounter", {}).get("reference", ""))] = o
    return views


def contacts(encounters: Sequence[Resource], observations: Sequence[Resource], *, withheld: bool) -> Section:
    found = sorted(
        (e for e in encounters if _is_contact(e)),
        key=lambda e: sort_key(e.get("period", {}).get("start")),
        reverse=True,
    )
    recent = found[:RECENT_CONTACTS]
    views = _views_by_encounter(observations)
    cited_views = [views[f"Encounter/{e.get('id')}"] for e in recent if f"Encounter/{e.get('id')}" in views]
    headers: tuple[str, ...] = ("Date", "Contact", "Status", "With", "Place")
    if cited_views:
        headers += ("Young person's views",)
    rows = []
    for e in recent:
        row: tuple[str, ...] = (
            when(e.get("period", {}).get("start")),
            first_concept(e.get("type")),
            str(e.get("status", "")),
            ", ".join(reference_name(p.get("individual")) for p in e.get("participant", ())),
            ", ".join(reference_name(loc.get("location")) for loc in e.get("location", ())),
        )
        if cited_views:
            view = views.get(f"Encounter/{e.get('id')}")
            row += (str(view.get("valueString", "")) if view else "",)
        rows.append(row)
    notes = [f"Showing the latest {len(recent)} of {len(found)} contacts."] if len(found) > len(recent) else []
    if withheld:
        notes.append("Contacts are not shared with this organisation.")
    table = Table("Recent contacts, newest first", headers, tuple(rows))
    return Section("contacts", "Recent contacts", (table,), (*recent, *cited_views), tuple(notes), withheld)


# -- C(E)TR recommendations -----------------------------------------------------------------------------------------


def reviews(encounters: Sequence[Resource], tasks: Sequence[Resource], *, withheld: bool) -> Section:
    meetings = sorted(
        (e for e in encounters if not _is_contact(e)),
        key=lambda e: sort_key(e.get("period", {}).get("start")),
        reverse=True,
    )
    meeting_rows = tuple(
        (when(m.get("period", {}).get("start")), first_concept(m.get("type")), str(m.get("status", "")))
        for m in meetings
    )
    recommendations = sorted((t for t in tasks if _is_recommendation(t)), key=_task_order)
    shown = recommendations[:RECOMMENDATIONS]
    rows = tuple(
        (
            str(t.get("description", "")),
            _owner(t),
            when(t.get("restriction", {}).get("period", {}).get("end")),
            _task_status(t),
        )
        for t in shown
    )
    notes = (
        [f"Showing {len(shown)} of {len(recommendations)} recommendations, open ones first."]
        if len(recommendations) > len(shown)
        else []
    )
    if withheld:
        notes.append("C(E)TR recommendations are not shared with this organisation.")
    tables = (
        Table("C(E)TR and LAEP meetings", ("Date", "Meeting", "Status"), meeting_rows),
        Table("Recommendations", ("Recommendation", "Owner", "Due", "Status"), rows),
    )
    return Section("cetr", "C(E)TR recommendations", tables, (*meetings, *shown), tuple(notes), withheld)


def _owner(task: Resource) -> str:
    person = reference_name(task.get("owner"))
    owner_agency = agency(extension_value(task, urls.EXT_OWNER_AGENCY, "valueReference"))
    return ", ".join(part for part in (person, owner_agency) if part)


# -- consent --------------------------------------------------------------------------------------------------------


def consent(consents: Sequence[Resource], *, withheld: bool) -> Section:
    rows = tuple(
        (
            first_concept(c.get("category")),
            str(c.get("status", "")),
            "Best-interests decision"
            if extension_value(c, urls.EXT_BEST_INTERESTS_DECISION, "valueBoolean")
            else "Consent",
            ", ".join(reference_name(p) for p in c.get("performer", ())),
            when(c.get("dateTime")),
        )
        for c in consents
    )
    notes = ("Consent records are not shared with this organisation.",) if withheld else ()
    table = Table("Consent", ("About", "Status", "Basis", "Decided by", "Date"), rows)
    return Section("consent", "Consent and sharing limits", (table,), tuple(consents), notes, withheld)
