"""Putting one person's summary together: read their records, reduce each to the caller's sharing profile, build the
sections and the document Bundle. The access check (a legitimate relationship) is the caller's job: the API route
does it before calling :func:`compose`; the ``kwg export summary`` operator command runs as the host's operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import orjson

from gateway import __version__
from gateway.api.access import RECIPIENTS, minimised
from gateway.api.everything import chunks, compartment_param
from gateway.auth import Caller
from gateway.errors import Gone, NotFound
from gateway.store.records import StoredResource
from gateway.store.repository import FhirRepository
from gateway.summary.document import Prepared, document_bundle
from gateway.summary.fhirtext import Resource
from gateway.summary.sections import Section, build_sections
from gateway.sync import sharing

#: The resource types a summary draws on (beyond the Patient).
SUMMARY_TYPES = ("Condition", "CareTeam", "EpisodeOfCare", "Flag", "Observation", "Task", "Encounter", "Consent")


@dataclass(frozen=True, slots=True)
class Summary:
    patient: Resource
    sections: list[Section]
    bundle: dict[str, object]
    prepared: Prepared
    #: The stored resources the summary includes (as reduced for the caller), for the AuditEvent.
    included: tuple[StoredResource, ...]


def withheld_types(caller: Caller) -> frozenset[str]:
    """The summary's resource types the caller's sharing profile leaves out altogether."""
    if caller.development:
        return frozenset()
    recipient = RECIPIENTS.get(caller.organisation_type)
    allowed = sharing.PROFILES[recipient] if recipient is not None else {}
    return frozenset(t for t in ("Patient", *SUMMARY_TYPES) if t not in allowed)


def sharing_limits(caller: Caller) -> str:
    held = sorted(withheld_types(caller))
    who = f"{caller.organisation} ({caller.organisation_type})"
    if caller.development:
        return "This copy was prepared without sharing limits (development or operator use)."
    if not held:
        return f"This copy was prepared for {who}; its sharing profile includes every record shown."
    return (
        f"This copy was prepared for {who}. Its sharing profile leaves out: {', '.join(held)}; "
        "restricted records (such as the young person's own views) go to NHS providers only."
    )


async def gather(repo: FhirRepository, patient: StoredResource) -> list[StoredResource]:
    """The person's stored records of the summary's types (the Patient first)."""
    found = [patient]
    for res_type in SUMMARY_TYPES:
        name = compartment_param(res_type)
        if name is None:
            continue
        async for some in chunks(repo, res_type, [(name, f"Patient/{patient.res_id}")]):
            found += some
    return found


#: How many agencies one Organization search looks up (by ODS code, ORed).
AGENCIES_PER_SEARCH = 50


def _escaped(text: str) -> str:
    """A search value part with FHIR search's special characters escaped (``\\``, ``,``, ``|``, ``$``)."""
    for special in ("\\", ",", "|", "$"):
        text = text.replace(special, "\\" + special)
    return text


async def agencies(repo: FhirRepository, teams: Sequence[StoredResource]) -> list[StoredResource]:
    """The Organizations the care teams' members act for (``participant.onBehalfOf``: a literal reference, or the
    logical one by identifier that the domain API writes), for their contact details. An Organization is directory
    data about no person: it is read as any caller's read would be, not reduced to a sharing profile."""
    ids: set[str] = set()
    tokens: set[str] = set()
    for team in teams:
        for participant in orjson.loads(team.content or b"{}").get("participant", ()):
            ref = participant.get("onBehalfOf") if isinstance(participant, dict) else None
            if not isinstance(ref, dict):
                continue
            literal = ref.get("reference")
            identifier = ref.get("identifier")
            if isinstance(literal, str) and literal.startswith("Organization/"):
                ids.add(literal.removeprefix("Organization/"))
            elif isinstance(identifier, dict) and identifier.get("system") and identifier.get("value"):
                tokens.add(f"{_escaped(str(identifier['system']))}|{_escaped(str(identifier['value']))}")
    found: dict[str, StoredResource] = {}
    for org_id in sorted(ids):
        try:
            found[org_id] = await repo.read("Organization", org_id)
        except (NotFound, Gone):
            continue  # a reference to an Organization this gateway does not hold: no contact details from it
    wanted = sorted(tokens)
    for start in range(0, len(wanted), AGENCIES_PER_SEARCH):
        value = ",".join(wanted[start : start + AGENCIES_PER_SEARCH])
        async for some in chunks(repo, "Organization", [("identifier", value)]):
            found.update((o.res_id, o) for o in some)
    return [found[k] for k in sorted(found)]


async def compose(repo: FhirRepository, caller: Caller, patient_id: str, *, base: str, at: str) -> Summary:
    """The caller's summary of this person (raises NotFound / Gone for an unknown or deleted person)."""
    stored_patient = await repo.read("Patient", patient_id)
    shown = [m for m in (minimised(caller, r) for r in await gather(repo, stored_patient)) if m is not None]
    shown += await agencies(repo, [s for s in shown if s.res_type == "CareTeam"])
    resources: list[Resource] = [orjson.loads(s.content) for s in shown if s.content is not None]
    sections = build_sections(resources, withheld_types=withheld_types(caller))
    sections = [replace(s, notes=(*s.notes, sharing_limits(caller))) if s.key == "consent" else s for s in sections]
    patient = resources[0] if resources and resources[0].get("resourceType") == "Patient" else {}
    if not patient:
        patient = {"resourceType": "Patient", "id": patient_id}
    prepared = Prepared(caller.organisation, caller.organisation_type, at, __version__)
    bundle = document_bundle(sections, patient, base=base, prepared=prepared)
    cited = {f"{r['resourceType']}/{r['id']}" for s in sections for r in s.entries} | {f"Patient/{patient_id}"}
    included = tuple(s for s in shown if s.reference in cited)
    return Summary(patient, sections, bundle, prepared, included)
