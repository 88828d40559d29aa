"""Identifier and code systems the HL7 v2 mappings write. One place, so every module and the docs agree."""

from __future__ import annotations

from typing import Final

from mappings.identifiers import NHS_NUMBER_SYSTEM, ODS_ORGANISATION_SYSTEM
from mappings.keyworking.urls import (
    BASE,
    UKCORE_NHS_NUMBER_VERIFICATION,
    UKCORE_NHS_NUMBER_VERIFICATION_ENGLAND,
    UKCORE_PATIENT,
)

__all__ = [
    "NHS_NUMBER_SYSTEM",
    "ODS_ORGANISATION_SYSTEM",
    "UKCORE_NHS_NUMBER_VERIFICATION",
    "UKCORE_NHS_NUMBER_VERIFICATION_ENGLAND",
    "UKCORE_PATIENT",
]

UKCORE_ENCOUNTER: Final = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Encounter"
UKCORE_PROVENANCE: Final = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Provenance"

V2_IDENTIFIER_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
V3_ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_NULL_FLAVOR: Final = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
V3_DATA_OPERATION: Final = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PROVENANCE_PARTICIPANT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"

#: Per sending facility (``<prefix><MSH-4>``): a visit number is unique only within the hospital that issued it.
VISIT_NUMBER_PREFIX: Final = f"{BASE}/Id/visit-number/"
#: Per sending facility: the message control id (MSH-10) of the message a change came from.
MESSAGE_PREFIX: Final = f"{BASE}/Id/hl7v2-message/"
#: Per sending facility: the sending application (MSH-3).
APPLICATION_PREFIX: Final = f"{BASE}/Id/hl7v2-application/"
#: Per assigning authority (CX.4): local patient identifiers such as a trust's MRN.
LOCAL_PATIENT_ID_PREFIX: Final = f"{BASE}/Id/local-patient-id/"
#: Per sending facility: hospital service codes (PV1-10; HL7 table 0069 is user-defined, so each sender has its own).
HOSPITAL_SERVICE_PREFIX: Final = f"{BASE}/CodeSystem/hl7v2-hospital-service/"


def per_sender(prefix: str, sender: str) -> str:
    """``prefix`` + the sender's code (``unknown`` when the message did not say), URL-safe."""
    safe = "".join(c if c.isalnum() or c in "-._" else "-" for c in sender)
    return prefix + (safe or "unknown")
