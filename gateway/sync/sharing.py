"""Sharing profiles: which resource types, and which of their elements, each kind of recipient may receive.

Least data to each recipient (domain.md section 7). The defaults here are the gateway's; the security issue adds
consent and per-organisation agreements on top. An element list names top-level elements; ``resourceType``,
``id`` and ``meta`` are always kept. A resource labelled sensitive (``meta.security`` code ``R``, as the young
person's views are) goes only to NHS providers.
"""

from __future__ import annotations

from typing import Any

from mappings.identifiers import NHS_NUMBER_SYSTEM
from mappings.keyworking.terminology import RecipientType
from mappings.keyworking.urls import LA_CHILD_ID_PREFIX, UPN

ALWAYS = ("resourceType", "id", "meta")


#: The kinds of recipient: the domain's own list (a consent's provisions name them too).
Recipient = RecipientType


#: Per recipient: resource type → allowed top-level elements (None: all of them).
PROFILES: dict[Recipient, dict[str, tuple[str, ...] | None]] = {
    Recipient.NHS_PROVIDER: dict.fromkeys(
        (
            "Patient",
            "Condition",
            "EpisodeOfCare",
            "Flag",
            "Observation",
            "CareTeam",
            "Encounter",
            "Composition",
            "Task",
            "Consent",
            "CarePlan",
            "Provenance",
        )
    ),
    Recipient.LOCAL_AUTHORITY: {
        "Patient": None,
        "EpisodeOfCare": None,
        "Flag": None,
        "CareTeam": None,
        "Encounter": ("extension", "identifier", "status", "class", "type", "subject", "episodeOfCare", "period"),
        "Task": None,
        "Consent": None,
    },
    Recipient.SCHOOL: {
        "Patient": ("identifier", "name", "birthDate"),
        "CareTeam": ("status", "subject", "period", "participant", "name"),
        "Encounter": ("status", "class", "type", "subject", "period"),
        "Task": ("extension", "status", "intent", "code", "description", "for", "owner", "restriction", "focus"),
    },
    Recipient.CHILDRENS_HOME: {
        "Patient": ("identifier", "name", "birthDate", "gender"),
        "CareTeam": None,
        "Encounter": ("status", "class", "type", "subject", "period", "participant"),
        "Task": None,
    },
    Recipient.YOUTH_JUSTICE: {
        "Patient": ("identifier", "name", "birthDate", "gender"),
        "CareTeam": None,
        "Encounter": ("status", "class", "type", "subject", "period"),
    },
}


#: Per recipient: the Patient identifier systems it may receive (a recipient not named here: all of them). A
#: school knows a pupil by the UPN and needs neither the NHS number nor the local authority's child id; the UPN
#: stays in the education and local authority context (domain.md section 6), so children's homes and youth
#: justice get the NHS number and the child id but not the UPN.
IDENTIFIER_SYSTEMS: dict[Recipient, frozenset[str]] = {
    Recipient.SCHOOL: frozenset({UPN}),
    Recipient.CHILDRENS_HOME: frozenset({NHS_NUMBER_SYSTEM, LA_CHILD_ID_PREFIX}),
    Recipient.YOUTH_JUSTICE: frozenset({NHS_NUMBER_SYSTEM, LA_CHILD_ID_PREFIX}),
}


def shares_identifier(recipient: Recipient, system: object) -> bool:
    """May this recipient receive a Patient identifier of this system? (A local authority's child id system is
    one per authority: they share the prefix.)"""
    allowed = IDENTIFIER_SYSTEMS.get(recipient)
    if allowed is None:
        return True
    if not isinstance(system, str):
        return False
    if system.startswith(LA_CHILD_ID_PREFIX):
        system = LA_CHILD_ID_PREFIX
    return system in allowed


def _identifiers_for(recipient: Recipient, resource: dict[str, Any]) -> dict[str, Any]:
    if recipient not in IDENTIFIER_SYSTEMS or not isinstance(resource.get("identifier"), list):
        return resource
    kept = [i for i in resource["identifier"] if isinstance(i, dict) and shares_identifier(recipient, i.get("system"))]
    narrowed = {k: v for k, v in resource.items() if k != "identifier"}
    if kept:
        narrowed["identifier"] = kept
    return narrowed


def allows(recipient: Recipient, res_type: str, only: tuple[str, ...] | None = None) -> bool:
    """May this recipient receive resources of this type at all?"""
    return res_type in PROFILES[recipient] and (only is None or res_type in only)


def is_sensitive(resource: dict[str, Any]) -> bool:
    labels = resource.get("meta", {}).get("security", ())
    return any(isinstance(label, dict) and label.get("code") in ("R", "V") for label in labels)


def reduce(recipient: Recipient, resource: dict[str, Any]) -> dict[str, Any] | None:
    """The part of the resource this recipient may see, or None when it may see none of it."""
    res_type = resource.get("resourceType")
    if not isinstance(res_type, str) or res_type not in PROFILES[recipient]:
        return None
    if is_sensitive(resource) and recipient is not Recipient.NHS_PROVIDER:
        return None
    elements = PROFILES[recipient][res_type]
    if res_type == "Patient":
        resource = _identifiers_for(recipient, resource)
    if elements is None:
        return resource
    keep = set(ALWAYS) | set(elements)
    reduced = {k: v for k, v in resource.items() if k in keep}
    if isinstance(reduced.get("meta"), dict):
        # A reduced resource no longer claims our profiles: it may lack what they require.
        reduced["meta"] = {k: v for k, v in reduced["meta"].items() if k != "profile"}
    return reduced
