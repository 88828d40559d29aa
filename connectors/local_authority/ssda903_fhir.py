"""SSDA903 records as FHIR R4 "context on the person". Pure.

Choice (docs/connectors/local-authority.md): one **Observation** per looked-after episode, category
``social-history``, code ``looked-after-episode`` in our ``la-context`` CodeSystem, ``effectivePeriod`` the episode
(DECOM to DEC), and one ``component`` per coded item (legal status, placement type, category of need, reason for
new episode, placement provider, reason episode ceased), each a CodeableConcept in a CodeSystem of ours named after
the 903 column. Observation is valid R4 without a profile change, searchable by patient, code and date, and keeps
history per episode; an extension on Patient would hold only the present and lose the episodes.

The Observation's identifier (LA child id system + child id + DECOM) makes a re-import of the same return update
the same Observation (conditional update by identifier) rather than add one.
"""

from __future__ import annotations

import re
from typing import Any

from connectors.local_authority.ssda903 import LookedAfterChild, LookedAfterEpisode
from mappings.keyworking import urls

CS_LA_CONTEXT = urls.code_system("la-context")
LOOKED_AFTER_EPISODE = "looked-after-episode"
EPISODE_DISPLAY = "Looked-after episode"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

#: 903 column → (component code in ``la-context``, the CodeSystem of the column's values).
COMPONENTS: dict[str, tuple[str, str]] = {
    "LS": ("legal-status", urls.code_system("ssda903-legal-status")),
    "PLACE": ("placement-type", urls.code_system("ssda903-placement-type")),
    "CIN": ("category-of-need", urls.code_system("ssda903-category-of-need")),
    "RNE": ("reason-new-episode", urls.code_system("ssda903-reason-new-episode")),
    "PLACE_PROVIDER": ("placement-provider", urls.code_system("ssda903-placement-provider")),
    "REC": ("reason-episode-ceased", urls.code_system("ssda903-reason-episode-ceased")),
}


def child_identifier(child_id: str, la_number: str) -> dict[str, str]:
    """The LA child id as a Patient identifier (unique only within that LA, hence the LA's own system)."""
    return {"system": urls.la_child_id_system(la_number), "value": child_id}


def patient_identifiers(child: LookedAfterChild, la_number: str) -> list[dict[str, str]]:
    """Identifiers to match or enrich the Patient: the LA child id, and the UPN when the header carries one."""
    out = [child_identifier(child.child_id, la_number)]
    if child.upn is not None:
        out.append({"system": urls.UPN, "value": child.upn})
    return out


def episode_id(episode: LookedAfterEpisode, la_number: str) -> str:
    """A FHIR id for the episode's Observation, stable across re-imports (at most 64 characters)."""
    text = f"la{la_number}-{episode.child_id}-{episode.start:%Y%m%d}"
    return re.sub(r"[^A-Za-z0-9.-]", "-", text)[:64]


def _component(column: str, value: str) -> dict[str, Any]:
    code, system = COMPONENTS[column]
    return {
        "code": {"coding": [{"system": CS_LA_CONTEXT, "code": code}]},
        "valueCodeableConcept": {"coding": [{"system": system, "code": value}]},
    }


def episode_to_fhir(episode: LookedAfterEpisode, *, patient_id: str, la_number: str) -> dict[str, Any]:
    """The Observation for one looked-after episode of the child known to the gateway as ``Patient/patient_id``."""
    period = {"start": episode.start.isoformat()}
    if episode.end is not None:
        period["end"] = episode.end.isoformat()
    values = {
        "LS": episode.legal_status,
        "PLACE": episode.placement_type,
        "CIN": episode.category_of_need,
        "RNE": episode.reason_new_episode,
        "PLACE_PROVIDER": episode.placement_provider,
        "REC": episode.reason_ended,
    }
    return {
        "resourceType": "Observation",
        "id": episode_id(episode, la_number),
        "identifier": [
            {"system": urls.la_child_id_system(la_number), "value": f"{episode.child_id}/{episode.start.isoformat()}"}
        ],
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "social-history"}]}],
        "code": {"coding": [{"system": CS_LA_CONTEXT, "code": LOOKED_AFTER_EPISODE, "display": EPISODE_DISPLAY}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectivePeriod": period,
        "component": [_component(col, value) for col, value in values.items() if value is not None],
    }
