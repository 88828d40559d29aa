"""Canonical URLs of everything the keyworking profiles publish, and the identifier systems the mappings use.

One place for every URL so the mappings, the profiles (``scripts/build-profiles``) and the docs cannot disagree.
The base is ours (``https://keyworking-gateway.org/fhir``); UK Core and HL7 URLs are quoted from their packages.
"""

from __future__ import annotations

from typing import Final

from mappings.identifiers import NHS_NUMBER_SYSTEM, ODS_ORGANISATION_SYSTEM

BASE: Final = "https://keyworking-gateway.org/fhir"


def code_system(name: str) -> str:
    """``https://keyworking-gateway.org/fhir/CodeSystem/<name>``."""
    return f"{BASE}/CodeSystem/{name}"


def value_set(name: str) -> str:
    """``https://keyworking-gateway.org/fhir/ValueSet/<name>``."""
    return f"{BASE}/ValueSet/{name}"


def structure_definition(name: str) -> str:
    """``https://keyworking-gateway.org/fhir/StructureDefinition/<name>`` (profiles and extensions alike)."""
    return f"{BASE}/StructureDefinition/{name}"


def naming_system(name: str) -> str:
    """An identifier system of ours: ``https://keyworking-gateway.org/fhir/Id/<name>``."""
    return f"{BASE}/Id/{name}"


# -- identifier systems -------------------------------------------------------------------------------------------

NHS_NUMBER: Final = NHS_NUMBER_SYSTEM
ODS_ORGANISATION: Final = ODS_ORGANISATION_SYSTEM
#: Pupil unique pupil number (DfE UPN). No national FHIR system exists, so it is ours (domain.md section 4).
UPN: Final = naming_system("upn")
#: A local authority's child id is unique only within that authority, so each authority gets its own system:
#: ``…/Id/la-child-id/<DfE LA number>`` (e.g. ``…/la-child-id/820``).
LA_CHILD_ID_PREFIX: Final = naming_system("la-child-id") + "/"


def la_child_id_system(la_number: str) -> str:
    """The identifier system for child ids issued by the local authority with this DfE LA number."""
    return LA_CHILD_ID_PREFIX + la_number


# -- profiles -----------------------------------------------------------------------------------------------------

UKCORE_PATIENT: Final = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"
UKCORE_CONDITION: Final = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Condition"
UKCORE_OBSERVATION: Final = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Observation"
UKCORE_COMPOSITION: Final = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Composition"

KEYWORKING_EPISODE_OF_CARE: Final = structure_definition("KeyworkingEpisodeOfCare")
REGISTER_ENTRY: Final = structure_definition("DynamicSupportRegisterEntry")
REGISTER_RATING_FLAG: Final = structure_definition("RegisterRatingFlag")
REGISTER_CONSENT: Final = structure_definition("RegisterConsent")
KEYWORKING_CARE_TEAM: Final = structure_definition("KeyworkingCareTeam")
KEYWORKING_CONTACT_ENCOUNTER: Final = structure_definition("KeyworkingContactEncounter")
CETR_REVIEW_ENCOUNTER: Final = structure_definition("CETRReviewEncounter")
CETR_RECOMMENDATION_TASK: Final = structure_definition("CETRRecommendationTask")

# -- extensions ---------------------------------------------------------------------------------------------------

EXT_KEYWORKING_PHASE: Final = structure_definition("keyworking-phase")
EXT_INTENSIVE_CYCLE: Final = structure_definition("intensive-cycle")
EXT_CLOSURE_REASON: Final = structure_definition("closure-reason")
EXT_KEYWORKER_CHANGE_REASON: Final = structure_definition("keyworker-change-reason")
EXT_NEXT_REVIEW_DATE: Final = structure_definition("next-review-date")
EXT_OWNER_AGENCY: Final = structure_definition("owner-agency")
EXT_NEEDS_HOSPITAL: Final = structure_definition("needs-hospital")
EXT_BEST_INTERESTS_DECISION: Final = structure_definition("best-interests-decision")
#: Patient: is the young person looked after by a local authority (Children Act 1989 s22)?
EXT_LOOKED_AFTER: Final = structure_definition("looked-after")
#: EpisodeOfCare: the second named keyworker (careManager holds the first; R4 allows only one careManager).
EXT_CO_KEYWORKER: Final = structure_definition("co-keyworker")

UKCORE_NHS_NUMBER_VERIFICATION: Final = (
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
)

# -- code systems -------------------------------------------------------------------------------------------------

CS_DSR_RATING: Final = code_system("dsr-rating")
CS_EPISODE_TYPE: Final = code_system("episode-type")
CS_REGISTER_STATUS: Final = code_system("register-status")
CS_SERVICE_MODEL: Final = code_system("service-model")
CS_KEYWORKING_PHASE: Final = code_system("keyworking-phase")
CS_CLOSURE_REASON: Final = code_system("closure-reason")
CS_KEYWORKER_CHANGE_REASON: Final = code_system("keyworker-change-reason")
CS_CARE_TEAM_ROLE: Final = code_system("care-team-role")
CS_CONTACT_TYPE: Final = code_system("contact-type")
CS_REVIEW_TYPE: Final = code_system("review-type")
CS_PANEL_ROLE: Final = code_system("panel-role")
CS_KEY_QUESTION: Final = code_system("cetr-key-question")
CS_DIAGNOSIS: Final = code_system("diagnosis")
CS_OBSERVATION_CODE: Final = code_system("keyworking-observation")
CS_DOCUMENT_TYPE: Final = code_system("document-type")
CS_TASK_TYPE: Final = code_system("task-type")
CS_CONSENT_CATEGORY: Final = code_system("consent-category")

SNOMED: Final = "http://snomed.info/sct"
UKCORE_NHS_NUMBER_VERIFICATION_ENGLAND: Final = (
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
)
V3_CONFIDENTIALITY: Final = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
V3_ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_PARTICIPATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
CONDITION_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
CONSENT_SCOPE: Final = "http://terminology.hl7.org/CodeSystem/consentscope"
#: A kind of recipient named by a consent provision (``Consent.provision.actor.reference.identifier``).
RECIPIENT_TYPE: Final = naming_system("recipient-type")
#: v3 ParticipationType: the role of a consent provision's actors (IRCP, information recipient).
PARTICIPATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
FLAG_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/flag-category"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"

#: Mental Capacity Act 2005 section 4 (best interests): the policy a best-interests decision is made under.
MCA_BEST_INTERESTS_POLICY: Final = "https://www.legislation.gov.uk/ukpga/2005/9/section/4"
#: NHS England's DSR and C(E)TR code of practice (2023): the policy consent to the register is given under.
DSR_CODE_OF_PRACTICE_POLICY: Final = "https://www.england.nhs.uk/long-read/dynamic-support-registers-and-care-education-and-treatment-review-code-of-practice/"
