"""The Patient an ADT message describes, laid over the Patient the gateway holds (UK Core shape). Pure.

What the message says replaces what it covers (NHS number and its verification status, name, gender, birth date,
postcode, GP practice); everything else on the current Patient is kept. Only the postcode of the address is taken:
the gateway needs the area, not the street. Whether to apply the result is the caller's policy.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from mappings.hl7v2 import systems
from mappings.hl7v2.event import AdtEvent, PatientIdentifier, PersonName
from mappings.keyworking.records import NHS_NUMBER_VERIFICATION_DISPLAY, NhsNumberVerification

Resource = dict[str, Any]

#: HL7 table 0001 → FHIR AdministrativeGender. A (ambiguous) is other; N (not applicable) and codes outside the
#: table are unknown: a sex the gateway cannot read is not a reason to refuse a whole admission.
GENDERS = {"M": "male", "F": "female", "O": "other", "A": "other", "U": "unknown", "N": "unknown"}
#: XPN.7 name type → HumanName.use.
NAME_USES = {"L": "official", "D": "usual", "M": "maiden", "N": "nickname", "A": "anonymous", "B": "old"}


def nhs_identifier(nhs_number: str, verification: str | None) -> Resource:
    identifier: Resource = {"system": systems.NHS_NUMBER_SYSTEM, "value": nhs_number}
    if verification is not None:
        status = NhsNumberVerification(verification)
        concept = {
            "coding": [
                {
                    "system": systems.UKCORE_NHS_NUMBER_VERIFICATION_ENGLAND,
                    "code": status.value,
                    "display": NHS_NUMBER_VERIFICATION_DISPLAY[status],
                }
            ]
        }
        identifier = {
            "extension": [{"url": systems.UKCORE_NHS_NUMBER_VERIFICATION, "valueCodeableConcept": concept}],
            **identifier,
        }
    return identifier


def local_identifier(ident: PatientIdentifier, *, old: bool = False) -> Resource:
    out: Resource = {
        "system": systems.per_sender(systems.LOCAL_PATIENT_ID_PREFIX, ident.assigning_authority),
        "value": ident.value,
    }
    if old:
        out = {"use": "old", **out}
    if ident.type_code:
        out["type"] = {"coding": [{"system": systems.V2_IDENTIFIER_TYPE, "code": ident.type_code}]}
    return out


def human_name(name: PersonName) -> Resource:
    out: Resource = {}
    if name.use_code in NAME_USES:
        out["use"] = NAME_USES[name.use_code]
    if name.family:
        out["family"] = name.family
    if name.given:
        out["given"] = list(name.given)
    if name.prefix:
        out["prefix"] = [name.prefix]
    if name.suffix:
        out["suffix"] = [name.suffix]
    return out


def _identifiers(event: AdtEvent, current: list[Resource]) -> list[Resource]:
    facts = event.patient
    kept = [i for i in current if facts.nhs_number is None or i.get("system") != systems.NHS_NUMBER_SYSTEM]
    new: list[Resource] = []
    if facts.nhs_number is not None:
        new.append(nhs_identifier(facts.nhs_number, facts.nhs_number_verification))
    new += [local_identifier(i) for i in facts.local_identifiers]
    if event.merge is not None:
        # Prior NHS numbers are not added: UK Core allows one NHS number; the replaced Patient keeps its own.
        new += [local_identifier(i, old=True) for i in event.merge.prior_identifiers if i.assigning_authority != "NHS"]
    seen = {(i.get("system"), i.get("value")) for i in new}
    return new + [i for i in kept if (i.get("system"), i.get("value")) not in seen]


def patient_resource(
    event: AdtEvent, current: Resource | None, *, patient_id: str, source: str, replaces: Sequence[str] = ()
) -> Resource:
    """The Patient after this message: ``current`` (or a new Patient) with what the message says laid over it.

    ``replaces``: for a merge (A40), the gateway ids of the Patients this one replaces (``link`` type replaces).
    """
    if patient_id in replaces:
        raise ValueError("a Patient cannot replace itself")
    patient: Resource = {k: copy.deepcopy(v) for k, v in (current or {}).items() if k != "meta"}
    patient["resourceType"], patient["id"] = "Patient", patient_id
    profiles = list((current or {}).get("meta", {}).get("profile", []))
    if systems.UKCORE_PATIENT not in profiles:
        profiles.append(systems.UKCORE_PATIENT)
    patient["meta"] = {"profile": profiles, "source": source}
    facts = event.patient
    patient["identifier"] = _identifiers(event, patient.get("identifier", []))
    names = [human_name(n) for n in facts.names]
    if names:
        patient["name"] = names
    if facts.sex:
        patient["gender"] = GENDERS.get(facts.sex, "unknown")
    if facts.birth_date is not None:
        patient["birthDate"] = facts.birth_date
    if facts.postcode is not None:
        addresses: list[Resource] = patient.get("address", [])
        if not any(a.get("postalCode", "").upper() == facts.postcode for a in addresses):
            patient["address"] = [{"use": "home", "postalCode": facts.postcode}]
    if facts.gp_practice is not None:
        patient["generalPractitioner"] = [
            {
                "type": "Organization",
                "identifier": {"system": systems.ODS_ORGANISATION_SYSTEM, "value": facts.gp_practice},
            }
        ]
    if replaces:
        links: list[Resource] = patient.get("link", [])
        linked = {link.get("other", {}).get("reference") for link in links}
        for other in replaces:
            if f"Patient/{other}" not in linked:
                links.append({"other": {"reference": f"Patient/{other}"}, "type": "replaces"})
        patient["link"] = links
    return patient
