"""KeyworkingCase ⇄ EpisodeOfCare (our KeyworkingEpisodeOfCare profile).

- ``type``: the service model. ``careManager``: the first keyworker; a second keyworker is our ``co-keyworker``
  extension (R4 allows one careManager). ``team``: the young person's CareTeam.
- The current phase and intensive cycle are the ``keyworking-phase`` and ``intensive-cycle`` extensions, because
  EpisodeOfCare.status cannot say them: referred → ``waitlist``; allocated, intensive, step-down, monitoring,
  inpatient and transition → ``active``; closed → ``finished`` (``cancelled`` when the reason is "declined").
- Past phases are ``statusHistory`` entries, each with the FHIR status, its period and the same two extensions,
  so the whole phase history is readable without the resource's version history. The current phase began when
  the last past phase ended (or at ``period.start``, the referral, if there is none).
- A closed case has ``period.end`` (the day it closed) and the ``closure-reason`` extension.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from mappings.keyworking import urls
from mappings.keyworking.elements import (
    Resource,
    agency_ref,
    codeable,
    coding,
    ext,
    ext_value,
    fhir_date,
    find_ext,
    meta,
    person_ref,
    read_agency,
    read_code,
    read_date,
    read_person,
    read_ref_id,
    ref,
    require_id,
    the_one,
)
from mappings.keyworking.errors import NotOurShape
from mappings.keyworking.records import KeyworkingCase, PhasePeriod
from mappings.keyworking.terminology import ClosureReason, KeyworkingPhase, ServiceModel


def fhir_status(phase: KeyworkingPhase, closure_reason: ClosureReason | None = None) -> str:
    """EpisodeOfCare.status for a phase (domain.md section 8)."""
    if phase is KeyworkingPhase.REFERRED:
        return "waitlist"
    if phase is KeyworkingPhase.CLOSED:
        return "cancelled" if closure_reason is ClosureReason.DECLINED else "finished"
    return "active"


def _phase_extensions(period: PhasePeriod) -> list[Resource]:
    out = [ext(urls.EXT_KEYWORKING_PHASE, "valueCoding", coding(period.phase))]
    if period.cycle is not None:
        out.append(ext(urls.EXT_INTENSIVE_CYCLE, "valuePositiveInt", period.cycle))
    return out


def to_fhir(case: KeyworkingCase) -> list[Resource]:
    cid = require_id(case.id, "keyworking case")
    current = case.history[-1]
    extensions = _phase_extensions(current)
    if case.closure_reason is not None:
        extensions.append(ext(urls.EXT_CLOSURE_REASON, "valueCodeableConcept", codeable(case.closure_reason)))
    if len(case.keyworkers) > 1:
        extensions.append(ext(urls.EXT_CO_KEYWORKER, "valueReference", person_ref(case.keyworkers[1])))
    episode: Resource = {
        "resourceType": "EpisodeOfCare",
        "id": cid,
        "meta": meta(urls.KEYWORKING_EPISODE_OF_CARE),
        "extension": extensions,
        "status": fhir_status(current.phase, case.closure_reason),
    }
    if len(case.history) > 1:
        episode["statusHistory"] = [
            {
                "extension": _phase_extensions(p),
                "status": fhir_status(p.phase),
                "period": {"start": fhir_date(p.start), "end": fhir_date(p.end or p.start)},
            }
            for p in case.history[:-1]
        ]
    episode["type"] = [codeable(case.service_model)]
    episode["patient"] = ref("Patient", case.person_id)
    if case.managing_organisation is not None:
        episode["managingOrganization"] = agency_ref(case.managing_organisation)
    period = {"start": fhir_date(case.referred_on)}
    if current.phase is KeyworkingPhase.CLOSED:
        period["end"] = fhir_date(current.start)
    episode["period"] = period
    if case.keyworkers:
        episode["careManager"] = person_ref(case.keyworkers[0])
    if case.care_team_id is not None:
        episode["team"] = [ref("CareTeam", case.care_team_id)]
    return [episode]


def _read_phase(element: Resource, path: str) -> tuple[KeyworkingPhase, int | None]:
    phase_ext = find_ext(element, urls.EXT_KEYWORKING_PHASE)
    if phase_ext is None:
        raise NotOurShape(f"{path}.extension", "has no keyworking-phase extension")
    phase = read_code(phase_ext.get("valueCoding"), KeyworkingPhase, f"{path}.extension(keyworking-phase)")
    cycle = ext_value(element, urls.EXT_INTENSIVE_CYCLE, "valuePositiveInt")
    return phase, cycle


def from_fhir(resources: Iterable[Resource]) -> KeyworkingCase:
    episode = the_one(resources, "EpisodeOfCare")
    types = episode.get("type", ())
    if len(types) != 1:
        raise NotOurShape("EpisodeOfCare.type", "a keyworking case has exactly one type (its service model)")
    period = episode.get("period", {})
    history: list[dict[str, Any]] = []
    for i, past in enumerate(episode.get("statusHistory", ())):
        path = f"EpisodeOfCare.statusHistory[{i}]"
        phase, cycle = _read_phase(past, path)
        history.append(
            {
                "phase": phase,
                "cycle": cycle,
                "start": read_date(past.get("period", {}).get("start"), f"{path}.period.start"),
                "end": read_date(past.get("period", {}).get("end"), f"{path}.period.end"),
            }
        )
    phase, cycle = _read_phase(episode, "EpisodeOfCare")
    start = history[-1]["end"] if history else read_date(period.get("start"), "EpisodeOfCare.period.start")
    history.append({"phase": phase, "cycle": cycle, "start": start})
    keyworkers = []
    if "careManager" in episode:
        keyworkers.append(read_person(episode["careManager"], "EpisodeOfCare.careManager"))
    co_keyworker = ext_value(episode, urls.EXT_CO_KEYWORKER, "valueReference")
    if co_keyworker is not None:
        keyworkers.append(read_person(co_keyworker, "EpisodeOfCare.extension(co-keyworker)"))
    record: dict[str, Any] = {
        "id": episode.get("id"),
        "person_id": read_ref_id(episode.get("patient"), "Patient", "EpisodeOfCare.patient"),
        "service_model": read_code(types[0], ServiceModel, "EpisodeOfCare.type[0]"),
        "history": history,
        "keyworkers": keyworkers,
    }
    reason = ext_value(episode, urls.EXT_CLOSURE_REASON, "valueCodeableConcept")
    if reason is not None:
        record["closure_reason"] = read_code(reason, ClosureReason, "EpisodeOfCare.extension(closure-reason)")
    teams = episode.get("team", ())
    if teams:
        record["care_team_id"] = read_ref_id(teams[0], "CareTeam", "EpisodeOfCare.team[0]")
    if "managingOrganization" in episode:
        record["managing_organisation"] = read_agency(
            episode["managingOrganization"], "EpisodeOfCare.managingOrganization"
        )
    try:
        return KeyworkingCase.model_validate(record)
    except ValidationError as exc:
        raise NotOurShape("EpisodeOfCare", str(exc)) from None
