"""Person ⇄ UK Core Patient (+ one UK Core Condition per learning disability or autism diagnosis).

The NHS number is the ``nhsNumber`` identifier slice with the NHSNumberVerificationStatus extension on the
identifier (as UK Core's examples do); the GP practice is ``generalPractitioner``, an Organization reference by
ODS code; looked-after status is our ``looked-after`` extension. Conditions get ids derived from the Patient's
(``<id>-ld``, ``<id>-autism``); on reading, Conditions without one of our diagnosis codes are ignored (other
systems record other conditions).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from mappings.keyworking import urls
from mappings.keyworking.elements import (
    Resource,
    codeable,
    ext,
    ext_value,
    fhir_date,
    find_code,
    meta,
    of_type,
    read_date,
    read_ref_id,
    ref,
    require_id,
    the_one,
)
from mappings.keyworking.errors import NotOurShape
from mappings.keyworking.records import (
    NHS_NUMBER_VERIFICATION_DISPLAY,
    Diagnosed,
    Person,
)
from mappings.keyworking.terminology import Diagnosis

CONDITION_SUFFIX: dict[Diagnosis, str] = {Diagnosis.LEARNING_DISABILITY: "ld", Diagnosis.AUTISM: "autism"}


def to_fhir(person: Person) -> list[Resource]:
    """The Patient first, then one Condition per diagnosis."""
    pid = require_id(person.id, "person")
    return [_patient(person, pid), *(_condition(d, pid) for d in person.diagnoses)]


def _patient(person: Person, pid: str) -> Resource:
    patient: Resource = {"resourceType": "Patient", "id": pid, "meta": meta(urls.UKCORE_PATIENT)}
    if person.looked_after is not None:
        patient["extension"] = [ext(urls.EXT_LOOKED_AFTER, "valueBoolean", person.looked_after)]
    identifiers: list[Resource] = []
    if person.nhs_number is not None:
        nhs: Resource = {"system": urls.NHS_NUMBER, "value": person.nhs_number}
        if person.nhs_number_verification is not None:
            status = person.nhs_number_verification
            nhs = {
                "extension": [
                    ext(
                        urls.UKCORE_NHS_NUMBER_VERIFICATION,
                        "valueCodeableConcept",
                        {
                            "coding": [
                                {
                                    "system": urls.UKCORE_NHS_NUMBER_VERIFICATION_ENGLAND,
                                    "code": status.value,
                                    "display": NHS_NUMBER_VERIFICATION_DISPLAY[status],
                                }
                            ]
                        },
                    )
                ],
                **nhs,
            }
        identifiers.append(nhs)
    if person.la_child_id is not None:
        identifiers.append(
            {"system": urls.la_child_id_system(person.la_child_id.la_number), "value": person.la_child_id.value}
        )
    if person.upn is not None:
        identifiers.append({"system": urls.UPN, "value": person.upn})
    if identifiers:
        patient["identifier"] = identifiers
    name: Resource = {"use": "official", "family": person.name.family}
    if person.name.given:
        name["given"] = list(person.name.given)
    patient["name"] = [name]
    patient["gender"] = person.sex.value
    patient["birthDate"] = fhir_date(person.birth_date)
    if person.postcode is not None:
        patient["address"] = [{"use": "home", "postalCode": person.postcode}]
    if person.gp_practice is not None:
        patient["generalPractitioner"] = [
            {"type": "Organization", "identifier": {"system": urls.ODS_ORGANISATION, "value": person.gp_practice}}
        ]
    return patient


def _condition(diagnosed: Diagnosed, pid: str) -> Resource:
    condition: Resource = {
        "resourceType": "Condition",
        "id": f"{pid}-{CONDITION_SUFFIX[diagnosed.diagnosis]}",
        "meta": meta(urls.UKCORE_CONDITION),
        "clinicalStatus": {"coding": [{"system": urls.CONDITION_CLINICAL, "code": "active", "display": "Active"}]},
        "verificationStatus": {
            "coding": [
                {
                    "system": urls.CONDITION_VERIFICATION,
                    "code": diagnosed.verification.value,
                    "display": diagnosed.verification.value.capitalize(),
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {"system": urls.CONDITION_CATEGORY, "code": "problem-list-item", "display": "Problem List Item"}
                ]
            }
        ],
        "code": codeable(diagnosed.diagnosis),
        "subject": ref("Patient", pid),
    }
    if diagnosed.recorded_on is not None:
        condition["recordedDate"] = fhir_date(diagnosed.recorded_on)
    return condition


def from_fhir(resources: Iterable[Resource]) -> Person:
    """The Person a Patient and its Conditions describe (Conditions of other kinds are ignored)."""
    resources = list(resources)
    patient = the_one(resources, "Patient")
    record: dict[str, Any] = {"id": patient.get("id")}
    for i, identifier in enumerate(patient.get("identifier", ())):
        system, value = identifier.get("system"), identifier.get("value")
        if system == urls.NHS_NUMBER:
            record["nhs_number"] = value
            status = ext_value(identifier, urls.UKCORE_NHS_NUMBER_VERIFICATION, "valueCodeableConcept")
            for c in (status or {}).get("coding", ()):
                if c.get("system") == urls.UKCORE_NHS_NUMBER_VERIFICATION_ENGLAND:
                    record["nhs_number_verification"] = c.get("code")
        elif isinstance(system, str) and system.startswith(urls.LA_CHILD_ID_PREFIX):
            record["la_child_id"] = {"la_number": system[len(urls.LA_CHILD_ID_PREFIX) :], "value": value}
        elif system == urls.UPN:
            record["upn"] = value
        elif system is None:
            raise NotOurShape(f"Patient.identifier[{i}].system", "is missing")
    names = patient.get("name", ())
    official = [n for n in names if n.get("use") == "official"] or list(names)
    if not official:
        raise NotOurShape("Patient.name", "is missing")
    record["name"] = {"family": official[0].get("family"), "given": official[0].get("given", [])}
    record["birth_date"] = read_date(patient.get("birthDate"), "Patient.birthDate")
    record["sex"] = patient.get("gender")
    for address in patient.get("address", ()):
        if "postalCode" in address:
            record["postcode"] = address["postalCode"]
            break
    for gp in patient.get("generalPractitioner", ()):
        identifier = gp.get("identifier", {})
        if identifier.get("system") == urls.ODS_ORGANISATION:
            record["gp_practice"] = identifier.get("value")
            break
    looked_after = ext_value(patient, urls.EXT_LOOKED_AFTER, "valueBoolean")
    if looked_after is not None:
        record["looked_after"] = looked_after
    record["diagnoses"] = [_diagnosed(c, i) for i, c in enumerate(of_type(resources, "Condition")) if _ours(c)]
    for i, condition in enumerate(of_type(resources, "Condition")):
        if _ours(condition) and read_ref_id(condition.get("subject"), "Patient", f"Condition[{i}].subject") != (
            patient.get("id")
        ):
            raise NotOurShape(f"Condition[{i}].subject", "is not this Patient")
    try:
        return Person.model_validate(record)
    except ValidationError as exc:
        raise NotOurShape("Patient", str(exc)) from None


def _ours(condition: Resource) -> bool:
    return find_code(condition.get("code"), Diagnosis) is not None


def _diagnosed(condition: Resource, i: int) -> dict[str, Any]:
    out: dict[str, Any] = {"diagnosis": find_code(condition.get("code"), Diagnosis)}
    for c in condition.get("verificationStatus", {}).get("coding", ()):
        if c.get("system") == urls.CONDITION_VERIFICATION:
            out["verification"] = c.get("code")
    if "recordedDate" in condition:
        out["recorded_on"] = read_date(condition["recordedDate"], f"Condition[{i}].recordedDate")
    return out
