"""CTF pupils as FHIR R4: Patient identifiers (the UPN) and an education-context Observation. Pure.

Choice (docs/connectors/education.md): the UPN becomes a Patient ``identifier`` in the gateway's UPN system
(``mappings.keyworking.urls.UPN``), so the import can match or enrich the Patient. The school and SEN provision
become one **Observation** per pupil and file, category ``social-history``, code ``education-context`` in our
``education-context`` CodeSystem, effective at the file's date, with components:

- ``school``: a CodeableConcept whose coding is the school's URN (or DfE number when the file has no URN) in our
  ``school-urn`` / ``school-dfe-number`` naming systems, display the school name;
- ``sen-provision``: the current SEN provision code (CodeSystem ``sen-provision``), ``sen-provision-start`` its
  start date (valueDateTime).

An Observation keeps history (one per file), is valid R4 as it stands and stays in the education context: the
sharing policy can withhold ``education-context`` Observations from recipients outside it (domain.md §6, the UPN
and school are sensitive).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from connectors.education.ctf import Pupil, School
from mappings.keyworking import urls

CS_EDUCATION_CONTEXT = urls.code_system("education-context")
CS_SEN_PROVISION = urls.code_system("sen-provision")
SCHOOL_URN = urls.naming_system("school-urn")
SCHOOL_DFE_NUMBER = urls.naming_system("school-dfe-number")
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

SEN_DISPLAY = {"E": "Education, health and care plan", "K": "SEN support", "N": "No special educational need"}


def patient_identifiers(pupil: Pupil) -> list[dict[str, str]]:
    """The identifiers the CTF gives the Patient: the UPN."""
    return [{"system": urls.UPN, "value": pupil.upn}]


def _component(code: str, value_key: str, value: Any) -> dict[str, Any]:
    return {"code": {"coding": [{"system": CS_EDUCATION_CONTEXT, "code": code}]}, value_key: value}


def school_coding(school: School) -> dict[str, str]:
    coding = (
        {"system": SCHOOL_URN, "code": school.urn}
        if school.urn
        else {"system": SCHOOL_DFE_NUMBER, "code": school.dfe_number}
    )
    if school.name:
        coding["display"] = school.name
    return coding


def education_context(pupil: Pupil, school: School | None, *, patient_id: str, as_of: date) -> dict[str, Any]:
    """The education-context Observation for ``Patient/patient_id`` from one CTF (``as_of``: the file's date)."""
    components: list[dict[str, Any]] = []
    if school is not None:
        components.append(_component("school", "valueCodeableConcept", {"coding": [school_coding(school)]}))
    sen = pupil.current_sen
    if sen is not None:
        coding = {"system": CS_SEN_PROVISION, "code": sen.provision}
        if sen.provision in SEN_DISPLAY:
            coding["display"] = SEN_DISPLAY[sen.provision]
        components.append(_component("sen-provision", "valueCodeableConcept", {"coding": [coding]}))
        if sen.start is not None:
            components.append(_component("sen-provision-start", "valueDateTime", sen.start.isoformat()))
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "social-history"}]}],
        "code": {"coding": [{"system": CS_EDUCATION_CONTEXT, "code": "education-context", "display": "Education"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": as_of.isoformat(),
        "component": components,
    }
