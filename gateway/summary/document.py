"""The summary as a FHIR document Bundle: the Composition first, the gateway's Device (its author), then every
resource a section cites, each once, with its fullUrl. Pure: sections and resources in, a Bundle dict out.

Section entries and the subject are absolute references equal to the cited entry's fullUrl (``<base>/Type/id``), so
they resolve inside the Bundle whatever a reader does with relative references next to a ``urn:uuid`` fullUrl.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.summary.fhirtext import Resource
from gateway.summary.sections import Section, Table

TITLE = "Keyworking cross-agency summary"
LOINC = "http://loinc.org"
#: LOINC 60591-5 Patient summary Document.
DOCUMENT_TYPE = {"coding": [{"system": LOINC, "code": "60591-5", "display": "Patient summary Document"}]}
EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
XHTML = "http://www.w3.org/1999/xhtml"
#: Names the document ids: the same person, caller and moment give the same Bundle (useful for tests and replays).
DOCUMENT_NAMESPACE = uuid.UUID("6f1b7a52-51c3-4e0c-9d4b-3f0bcb6f3a11")


@dataclass(frozen=True, slots=True)
class Prepared:
    """Who the summary was prepared for and when (the document's header)."""

    organisation: str
    organisation_type: str
    at: str  # FHIR instant
    gateway_version: str


def table_xhtml(table: Table) -> str:
    if not table.rows:
        return ""
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in table.headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    caption = html.escape(table.caption)
    return f"<table><caption>{caption}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def section_narrative(section: Section) -> str:
    parts = [table_xhtml(t) for t in section.tables]
    parts += [f"<p>{html.escape(note)}</p>" for note in section.notes]
    if section.empty and not section.notes:
        parts.append("<p>Nothing recorded.</p>")
    return f'<div xmlns="{XHTML}">{"".join(parts)}</div>'


def full_url(base: str, resource: Resource) -> str:
    return f"{base}/{resource['resourceType']}/{resource['id']}"


def document_bundle(
    sections: Sequence[Section], patient: Resource, *, base: str, prepared: Prepared
) -> dict[str, object]:
    """The document Bundle for these sections about this person."""
    seed = f"{patient['id']}|{prepared.organisation}|{prepared.at}"
    document_id = uuid.uuid5(DOCUMENT_NAMESPACE, seed)
    composition_url = f"urn:uuid:{uuid.uuid5(DOCUMENT_NAMESPACE, seed + '|composition')}"
    device_url = f"urn:uuid:{uuid.uuid5(DOCUMENT_NAMESPACE, 'keyworking-gateway')}"
    cited: dict[str, Resource] = {full_url(base, patient): patient}
    composition_sections = []
    for section in sections:
        entry_refs = []
        for resource in section.entries:
            url = full_url(base, resource)
            cited.setdefault(url, resource)
            entry_refs.append({"reference": url})
        out: dict[str, object] = {
            "title": section.title,
            "text": {"status": "generated", "div": section_narrative(section)},
        }
        if entry_refs:
            out["entry"] = entry_refs
        else:
            code = "withheld" if section.withheld else "nilknown"
            display = "Information Withheld" if section.withheld else "Nil Known"
            out["emptyReason"] = {"coding": [{"system": EMPTY_REASON, "code": code, "display": display}]}
        composition_sections.append(out)
    composition = {
        "resourceType": "Composition",
        "status": "final",
        "type": DOCUMENT_TYPE,
        "subject": {"reference": full_url(base, patient)},
        "date": prepared.at,
        "author": [{"reference": device_url, "display": "Keyworking Gateway"}],
        "title": TITLE,
        "confidentiality": "R",
        "section": composition_sections,
    }
    device = {
        "resourceType": "Device",
        "deviceName": [{"name": "Keyworking Gateway", "type": "manufacturer-name"}],
        "version": [{"value": prepared.gateway_version}],
        "note": [{"text": f"Prepared for {prepared.organisation} ({prepared.organisation_type})"}],
    }
    entries = [{"fullUrl": composition_url, "resource": composition}, {"fullUrl": device_url, "resource": device}]
    entries += [{"fullUrl": url, "resource": resource} for url, resource in cited.items()]
    return {
        "resourceType": "Bundle",
        "id": str(document_id),
        "meta": {"lastUpdated": prepared.at},
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{document_id}"},
        "type": "document",
        "timestamp": prepared.at,
        "entry": entries,
    }
