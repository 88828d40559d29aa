"""AuditEvent resources (FHIR R4, in the shape UK Core's AuditEvent guidance expects), built from what happened.

Pure. One AuditEvent per interaction: ``type`` rest, ``subtype`` the FHIR interaction (read, vread, search-type,
create, update, delete, history-instance, transaction...), ``action`` C/R/U/D/E, ``recorded``, ``outcome`` (0 success,
4 minor failure such as a refused request, 8 serious failure), two agents (the client, requestor, with its purpose
of use; the organisation it acts for), ``source`` the gateway, and ``entity``: each resource touched and, with role
1 (patient), each person whose data it was, so ``AuditEvent?patient=Patient/<id>`` finds every access to a person.
A search also records its query (base64, as R4's ``entity.query`` requires), never the data it returned.

Access that relied on break-glass (``X-Break-Glass``) is flagged in a coded way, not only in ``outcomeDesc``: its
``purposeOfEvent`` carries the v3 ActReason ``BTG`` (break the glass) beside the caller's purpose, so
``AuditEvent?purpose=http://terminology.hl7.org/CodeSystem/v3-ActReason|BTG`` finds every such access, and
``meta.security`` carries the same code.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from mappings.identifiers import ODS_ORGANISATION_SYSTEM
from mappings.keyworking import urls

CLIENT_SYSTEM = urls.naming_system("api-client")
INTERACTION_SYSTEM = "http://hl7.org/fhir/restful-interaction"
EVENT_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/audit-event-type"
PURPOSE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
OBJECT_ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/object-role"
PARTICIPATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

#: Purposes of use as the caller states them → v3 ActReason codes.
PURPOSES = {
    "DIRECT_CARE": ("TREAT", "treatment"),
    "ADMINISTRATION": ("HOPERAT", "healthcare operations"),
    "AUDIT": ("HSYSADMIN", "health system administration"),
    "RESEARCH": ("HRESCH", "healthcare research"),
    "EMERGENCY": ("ETREAT", "emergency treatment"),
}

#: The flag on an AuditEvent of access that relied on break-glass (v3 ActReason, a purpose of use).
BREAK_GLASS = {"system": PURPOSE_SYSTEM, "code": "BTG", "display": "break the glass"}

ACTIONS = {
    "read": "R",
    "vread": "R",
    "search-type": "E",
    "search-system": "E",
    "history-instance": "R",
    "history-type": "R",
    "history-system": "R",
    "create": "C",
    "update": "U",
    "patch": "U",
    "delete": "D",
    "transaction": "E",
    "batch": "E",
    "operation": "E",
}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What happened, as the API saw it (cheap to make on the request path; the resource is built later)."""

    at: str  # instant, e.g. 2026-11-25T10:00:00.123456+00:00
    client_id: str
    organisation: str
    purpose: str
    interaction: str  # a restful-interaction code (keys of ACTIONS)
    references: tuple[str, ...] = ()  # Type/id of the resources touched
    patients: tuple[str, ...] = ()  # ids of the Patients whose data it was
    query: str | None = None  # the search or history query, for searches
    outcome: str = "0"
    description: str | None = None
    break_glass: bool = False  # the access relied on break-glass: flagged with BTG
    extra: dict[str, Any] = field(default_factory=dict)


def audit_event(entry: AuditEntry) -> dict[str, Any]:
    """The AuditEvent resource for an entry (no id: the store assigns one)."""
    code, display = PURPOSES.get(entry.purpose.upper(), ("TREAT", "treatment"))
    entities: list[dict[str, Any]] = [
        {
            "what": {"reference": f"Patient/{pid}"},
            "role": {"system": OBJECT_ROLE_SYSTEM, "code": "1", "display": "Patient"},
        }
        for pid in dict.fromkeys(entry.patients)
    ]
    entities += [
        {"what": {"reference": ref}, "role": {"system": OBJECT_ROLE_SYSTEM, "code": "4", "display": "Domain Resource"}}
        for ref in dict.fromkeys(entry.references)
        if not (ref.startswith("Patient/") and ref[len("Patient/") :] in entry.patients)
    ]
    if entry.query is not None:
        entities.append(
            {
                "role": {"system": OBJECT_ROLE_SYSTEM, "code": "24", "display": "Query"},
                "query": base64.b64encode(entry.query.encode()).decode(),
            }
        )
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": {"system": EVENT_TYPE_SYSTEM, "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": INTERACTION_SYSTEM, "code": entry.interaction}],
        "action": ACTIONS.get(entry.interaction, "E"),
        "recorded": entry.at,
        "outcome": entry.outcome,
        "purposeOfEvent": [{"coding": [{"system": PURPOSE_SYSTEM, "code": code, "display": display}]}],
        "agent": [
            {
                "type": {
                    "coding": [{"system": PARTICIPATION_SYSTEM, "code": "IRCP", "display": "information recipient"}]
                },
                "who": {"identifier": {"system": CLIENT_SYSTEM, "value": entry.client_id}},
                "requestor": True,
                "purposeOfUse": [{"coding": [{"system": PURPOSE_SYSTEM, "code": code, "display": display}]}],
            },
            {
                "who": {"identifier": {"system": ODS_ORGANISATION_SYSTEM, "value": entry.organisation}},
                "requestor": False,
            },
        ],
        "source": {"observer": {"display": "Keyworking Gateway"}},
    }
    if entry.break_glass:
        event["meta"] = {"security": [BREAK_GLASS]}
        event["purposeOfEvent"].append({"coding": [BREAK_GLASS], "text": "break-glass"})
    if entry.description:
        event["outcomeDesc"] = entry.description
    if entities:
        event["entity"] = entities
    return event
