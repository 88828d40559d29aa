"""Our keyworking profiles: valid instances pass, each rule the profiles add is enforced, with its path."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.conformance.keyworking import CODE_SYSTEMS, PROFILES, cs_url, sd_url
from gateway.conformance.validator import ProfileValidator
from gateway.validation import structure_issues, validate_resource

B = "https://keyworking-gateway.org/fhir"


def _coding(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": cs_url(system), "code": code}]}


def episode() -> dict[str, Any]:
    return {
        "resourceType": "EpisodeOfCare",
        "meta": {"profile": [sd_url("KeyworkingEpisodeOfCare")]},
        "extension": [
            {
                "url": sd_url("keyworking-phase"),
                "valueCoding": {"system": cs_url("keyworking-phase"), "code": "intensive"},
            },
            {"url": sd_url("intensive-cycle"), "valuePositiveInt": 2},
        ],
        "status": "active",
        "type": [_coding("service-model", "nhs-ld-autism")],
        "patient": {"reference": "Patient/p1"},
        "careManager": {"reference": "Practitioner/k1"},
        "period": {"start": "2026-01-05"},
    }


def task() -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "meta": {"profile": [sd_url("CETRRecommendationTask")]},
        "extension": [{"url": sd_url("owner-agency"), "valueReference": {"reference": "Organization/la"}}],
        "status": "requested",
        "intent": "order",
        "description": "Arrange a sensory assessment",
        "for": {"reference": "Patient/p1"},
        "owner": {"reference": "Practitioner/sw1"},
        "restriction": {"period": {"end": "2026-03-01"}},
    }


def flag(code: str = "red") -> dict[str, Any]:
    return {
        "resourceType": "Flag",
        "meta": {"profile": [sd_url("RegisterRatingFlag")]},
        "extension": [{"url": sd_url("next-review-date"), "valueDate": "2026-02-01"}],
        "status": "active",
        "code": _coding("dsr-rating", code),
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2026-01-05"},
    }


def care_team(roles: list[str]) -> dict[str, Any]:
    return {
        "resourceType": "CareTeam",
        "meta": {"profile": [sd_url("KeyworkingCareTeam")]},
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        "participant": [
            {"role": [_coding("care-team-role", role)], "member": {"reference": f"Practitioner/{i}"}}
            for i, role in enumerate(roles)
        ],
    }


def encounter(profile: str, type_system: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "meta": {"profile": [sd_url(profile)]},
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [_coding(type_system, code)],
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2026-01-05T10:00:00Z", "end": "2026-01-05T12:00:00Z"},
    }


def consent() -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "meta": {"profile": [sd_url("RegisterConsent")]},
        "extension": [{"url": sd_url("best-interests-decision"), "valueBoolean": True}],
        "status": "active",
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/p1"},
        "dateTime": "2026-01-05T10:00:00Z",
        "performer": [{"reference": "Practitioner/k1"}],
        "policyRule": {"text": "Dynamic support register and C(E)TR policy (NHS England, 2023)"},
    }


def errors(resource: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i.expression[0] if i.expression else "", i.diagnostics) for i in validate_resource(resource)]


def test_valid_instances_of_every_profile_pass() -> None:
    samples = [
        episode(),
        task(),
        flag(),
        care_team(["keyworker", "social-worker"]),
        encounter("CETRReviewEncounter", "review-type", "community-cetr"),
        encounter("KeyworkingContactEncounter", "contact-type", "home-visit"),
        consent(),
    ]
    assert {s["meta"]["profile"][0] for s in samples} | {sd_url("DynamicSupportRegisterEntry")} == {
        p["url"] for p in PROFILES
    }
    for sample in samples:
        assert structure_issues(sample) == []
        assert errors(sample) == [], sample["meta"]["profile"][0]


def test_episode_needs_a_type_and_a_phase() -> None:
    resource = episode()
    del resource["type"]
    resource["extension"] = resource["extension"][1:]
    found = errors(resource)
    assert ("EpisodeOfCare.type", "EpisodeOfCare.type: minimum required = 1, but only found 0") in found
    assert any("extension:phase: minimum required = 1" in message for _path, message in found)


@pytest.mark.parametrize(
    ("status", "phase", "refused"),
    [
        ("active", "allocated", True),
        ("active", "intensive", True),
        ("active", "step-down", True),
        ("active", "monitoring", True),
        ("waitlist", "referred", False),
        ("finished", "closed", False),
        ("cancelled", "closed", False),
    ],
)
def test_only_an_active_episode_must_name_its_keyworker(status: str, phase: str, refused: bool) -> None:
    resource = episode()
    resource["status"] = status
    resource["extension"] = [
        {"url": sd_url("keyworking-phase"), "valueCoding": {"system": cs_url("keyworking-phase"), "code": phase}}
    ]
    assert errors(resource) == []
    del resource["careManager"]
    expected = [("EpisodeOfCare", "kwg-eoc-1: An active keyworking case names its keyworker in careManager")]
    assert errors(resource) == (expected if refused else [])


def test_past_phases_carry_the_phase_extensions() -> None:
    resource = episode()
    phase = resource["extension"][0]
    resource["statusHistory"] = [
        {"extension": [phase], "status": "active", "period": {"start": "2026-01-05", "end": "2026-02-01"}}
    ]
    assert errors(resource) == []
    resource["statusHistory"][0]["extension"] = []
    del resource["statusHistory"][0]["extension"]
    found = errors(resource)
    assert any("statusHistory.extension:phase: minimum required = 1" in m for _p, m in found), found


def test_a_second_keyworker_is_a_co_keyworker_reference() -> None:
    resource = episode()
    resource["extension"].append({"url": sd_url("co-keyworker"), "valueReference": {"reference": "Practitioner/k2"}})
    assert errors(resource) == []
    resource["extension"][-1] = {"url": sd_url("co-keyworker"), "valueReference": {"reference": "Patient/p1"}}
    assert [p for p, _m in errors(resource)] == ["EpisodeOfCare.extension[2].valueReference"]


def test_episode_type_must_be_a_service_model() -> None:
    resource = episode()
    resource["type"] = [_coding("contact-type", "session")]
    assert [p for p, _m in errors(resource)] == ["EpisodeOfCare.type[0]"]


def test_phase_extension_value_must_be_a_known_phase() -> None:
    resource = episode()
    resource["extension"][0]["valueCoding"]["code"] = "hibernating"
    paths = {p for p, _m in errors(resource)}
    assert "EpisodeOfCare.extension[0].valueCoding" in paths


def test_phase_extension_is_not_allowed_on_a_flag() -> None:
    resource = flag()
    resource["extension"].append(episode()["extension"][0])
    assert [p for p, m in errors(resource) if "not allowed on Flag" in m] == ["Flag.extension[1]"]


def test_recommendation_needs_an_owner_and_a_due_date() -> None:
    resource = task()
    del resource["owner"]
    resource["restriction"] = {"period": {"start": "2026-01-01"}}
    paths = {p for p, _m in errors(resource)}
    assert paths == {"Task.owner", "Task.restriction.period.end"}


def test_period_end_before_start_breaks_the_invariant() -> None:
    resource = task()
    resource["restriction"]["period"] = {"start": "2026-04-01", "end": "2026-03-01"}
    assert [m.split(":")[0] for p, m in errors(resource)] == ["per-1"]


def test_every_rating_is_accepted_and_others_refused() -> None:
    for code in ("blue", "red", "amber", "green"):
        assert errors(flag(code)) == []
    assert {p for p, _m in errors(flag("purple"))} == {"Flag.code", "Flag.code.coding[0]"}


def test_rating_definitions_come_from_the_register_policy() -> None:
    ratings = next(s for s in CODE_SYSTEMS if s.id == "dsr-rating")
    blue = next(c for c in ratings.concepts if c.code == "blue")
    assert blue.definition == "Currently an inpatient in a mental-health hospital."


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["review-type", "contact-type"]), max_size=3))
def test_review_encounter_type_cardinality(systems: list[str]) -> None:
    resource = encounter("CETRReviewEncounter", "review-type", "laep")
    resource["type"] = [_coding(s, "laep" if s == "review-type" else "session") for s in systems]
    if not systems:
        del resource["type"]
    found = errors(resource)
    cardinality = [m for _p, m in found if "Encounter.type: m" in m]
    assert bool(cardinality) == (len(systems) != 1)
    if len(systems) == 1:
        assert bool(found) == (systems[0] == "contact-type")


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=4), st.integers(min_value=0, max_value=3))
def test_nhs_number_slice_allows_at_most_one(nhs_numbers: int, others: int) -> None:
    identifiers = [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}] * nhs_numbers
    identifiers += [{"system": "https://example.org/Id/upn", "value": f"U{i}"} for i in range(others)]
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "meta": {"profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"]},
    }
    if identifiers:
        patient["identifier"] = identifiers
    too_many = [m for _p, m in errors(patient) if "identifier:nhsNumber: maximum allowed = 1" in m]
    assert bool(too_many) == (nhs_numbers > 1)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["keyworker", "gp", "advocate", "wizard"]), min_size=0, max_size=4))
def test_care_team_roles_and_participant_count(roles: list[str]) -> None:
    resource = care_team(roles)
    if not roles:
        del resource["participant"]
    found = errors(resource)
    expected_bad_roles = {f"CareTeam.participant[{i}].role[0]" for i, r in enumerate(roles) if r == "wizard"}
    assert {p for p, m in found if "required value set" in m} == expected_bad_roles
    assert any("participant: minimum required = 1" in m for _p, m in found) == (not roles)


def test_a_resource_claiming_no_profile_is_not_profile_checked() -> None:
    resource = task()
    del resource["meta"]
    del resource["owner"]
    assert validate_resource(resource) == []


def test_unknown_claimed_profile_alone_does_not_block_a_write() -> None:
    resource = task()
    resource["meta"]["profile"] = [f"{B}/StructureDefinition/SomethingElse"]
    del resource["owner"]
    assert validate_resource(resource) == []


def test_compiled_profiles_are_cached(strict: ProfileValidator) -> None:
    assert strict.profile(sd_url("KeyworkingEpisodeOfCare")) is strict.profile(sd_url("KeyworkingEpisodeOfCare"))


def test_reference_to_a_type_the_element_does_not_allow_is_refused() -> None:
    resource = episode()
    resource["careManager"] = {"reference": "Patient/p1"}
    found = errors(resource)
    assert [p for p, _m in found] == ["EpisodeOfCare.careManager"]
    assert "a reference to Patient is not allowed here" in found[0][1]
    resource["careManager"] = {"reference": "https://gateway.example/fhir/Practitioner/k1/_history/2"}
    assert errors(resource) == []


def test_base_invariants_still_fire_when_their_fast_path_does_not_apply(strict: ProfileValidator) -> None:
    resource = task()
    resource["owner"] = {"reference": "#missing"}
    resource["contained"] = [
        {"resourceType": "Practitioner", "id": "p", "contained": [{"resourceType": "Patient", "id": "q"}]}
    ]
    keys = {i.diagnostics.split(":")[0] for i in strict.validate(resource) if i.severity == "error"}
    assert {"ref-1", "dom-2"} <= keys
