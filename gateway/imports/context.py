"""Context from partners' files onto the young people the gateway already knows (it never creates people from them).

- The looked-after children return (SSDA903 Header and Episodes CSV): each episode becomes an Observation (legal
  status, placement, period) on the Patient with that local authority's child id (or UPN).
- A Common Transfer File (CTF XML): each pupil's school and SEN provision become an education-context Observation on
  the Patient with that UPN.

Ids are derived from the source (the LA, child and episode start; the UPN), so importing the same file again updates
rather than duplicates. Rows for people the gateway does not know are counted, not kept. Nothing identifying is
reported: rows are named by their number only.

Each import is one transaction, with one Provenance naming every version it wrote, the importing client and the
file(s) (``origin``); an import that changes nothing writes none.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from connectors.education.ctf import parse_ctf
from connectors.education.ctf_fhir import education_context
from connectors.local_authority.ssda903 import parse_return
from connectors.local_authority.ssda903_fhir import child_identifier, episode_to_fhir
from gateway.domain.gather import read_optional, search
from gateway.domain.service import same_content
from gateway.origins import attribute
from gateway.store.records import StoredResource
from gateway.store.repository import FhirRepository
from mappings.keyworking import urls
from mappings.provenance import Origin


@dataclass(slots=True)
class ContextReport:
    written: int = 0
    people_matched: int = 0
    people_unknown: int = 0
    errors: list[str] = field(default_factory=list)


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def _unquoted(message: str) -> str:
    """A parser's message without the values it quotes (a date of birth, a UPN): reports name cells, not data."""
    return _QUOTED.sub("the value", message)


async def _put_if_changed(repo: FhirRepository, resource: dict[str, Any]) -> StoredResource | None:
    """Store the resource unless the stored version already says the same (a re-import makes no new versions);
    the version written, None when nothing was."""
    current = await read_optional(repo, str(resource["resourceType"]), str(resource["id"]))
    if same_content(current, resource):
        return None
    return (await repo.update(str(resource["resourceType"]), str(resource["id"]), resource)).resource


async def _patient_by(repo: FhirRepository, system: str, value: str) -> str | None:
    found = await search(repo, "Patient", [("identifier", f"{system}|{value}")])
    return str(found[0]["id"]) if found else None


async def import_ssda903(
    repo: FhirRepository, header_csv: str, episodes_csv: str, la_number: str, *, origin: Origin
) -> ContextReport:
    parsed = parse_return(header_csv, episodes_csv)
    report = ContextReport(errors=[f"{e.file} row {e.row}, {e.column}: {_unquoted(e.message)}" for e in parsed.errors])
    upns = {c.child_id: c.upn for c in parsed.children}
    patients: dict[str, str | None] = {}
    for child_id in sorted({e.child_id for e in parsed.episodes}):
        ident = child_identifier(child_id, la_number)
        patient = await _patient_by(repo, ident["system"], ident["value"])
        if patient is None and upns.get(child_id):
            patient = await _patient_by(repo, urls.UPN, str(upns[child_id]))
        patients[child_id] = patient
        if patient is None:
            report.people_unknown += 1
        else:
            report.people_matched += 1
    async with repo.transaction() as tx:
        written: list[StoredResource] = []
        for episode in parsed.episodes:
            patient_id = patients.get(episode.child_id)
            if patient_id is None:
                continue
            resource = episode_to_fhir(episode, patient_id=patient_id, la_number=la_number)
            if (stored := await _put_if_changed(tx, resource)) is not None:
                written.append(stored)
            report.written += 1
        await attribute(tx, written, origin)
    return report


async def import_ctf(repo: FhirRepository, data: bytes, *, as_of: date, origin: Origin) -> ContextReport:
    parsed = parse_ctf(data)
    report = ContextReport(errors=[f"pupil {e.pupil}, {e.element}: {_unquoted(e.message)}" for e in parsed.errors])
    async with repo.transaction() as tx:
        written: list[StoredResource] = []
        for pupil in parsed.pupils:
            patient_id = await _patient_by(tx, urls.UPN, pupil.upn)
            if patient_id is None:
                report.people_unknown += 1
                continue
            report.people_matched += 1
            resource = education_context(pupil, parsed.school, patient_id=patient_id, as_of=as_of)
            resource["id"] = "ctf-" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"{urls.UPN}|{pupil.upn}"))
            if (stored := await _put_if_changed(tx, resource)) is not None:
                written.append(stored)
            report.written += 1
        await attribute(tx, written, origin)
    return report
