"""What the mappings produce is what the profiles accept, and the published terminology is ours.

The store validates every write against the profiles a resource claims (gateway.validation); a mapping that
produced something the store refuses would make the domain API fail on valid input. The CodeSystems under
``profiles/keyworking/`` are generated from :mod:`mappings.keyworking.terminology`; the last tests catch drift.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings

from gateway.validation import validate_resource
from mappings.keyworking import terminology, urls
from mappings.keyworking.mapping import to_fhir
from mappings.keyworking.records import KeyworkingCase, Record
from tests.mappings import strategies

PUBLISHED = Path(__file__).parents[2] / "profiles" / "keyworking"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(strategies.any_record())
def test_every_mapped_resource_is_accepted_by_the_store(record: Record) -> None:
    # A case with no keyworker yet (referred, or closed from referral) is the one known gap: see the strict xfail.
    assume(not (isinstance(record, KeyworkingCase) and not record.keyworkers))
    for resource in to_fhir(record):
        assert list(validate_resource(resource)) == [], resource


@pytest.mark.xfail(
    strict=True,
    reason="KeyworkingEpisodeOfCare makes careManager 1..1, but a referred case has no keyworker yet; "
    "the profile should allow 0..1 while the phase is referred (asked of the profiles' owner)",
)
def test_a_referred_case_is_accepted_by_the_store() -> None:
    case = KeyworkingCase.model_validate(
        {
            "id": "c",
            "person_id": "p",
            "service_model": "nhs-ld-autism",
            "history": [{"phase": "referred", "start": "2025-01-06"}],
        }
    )
    assert list(validate_resource(to_fhir(case)[0])) == []


def test_enums_and_tables_agree() -> None:
    for enum, system_id in terminology.ENUM_SYSTEMS.items():
        assert [c.code for c in terminology.CODE_SYSTEMS[system_id]] == [m.value for m in enum], system_id
    assert set(terminology.ENUM_SYSTEMS.values()) == set(terminology.CODE_SYSTEMS) == set(terminology.CODE_SYSTEM_INFO)
    for system_id, equivalents in terminology.SNOMED_EQUIVALENTS.items():
        codes = {c.code for c in terminology.CODE_SYSTEMS[system_id]}
        assert set(equivalents) <= codes
        assert all(sctid.isdigit() for sctid, _ in equivalents.values())


def test_service_model_phases_are_phases() -> None:
    for model, rules in terminology.SERVICE_MODELS.items():
        assert {terminology.KeyworkingPhase.REFERRED, terminology.KeyworkingPhase.CLOSED} <= rules.phases, model
        assert 1 <= rules.max_keyworkers <= 2 and 0 <= rules.min_age < rules.max_age <= 25
    efh = terminology.ServiceModel.EXTRA_FAMILIAL_HARM
    assert terminology.phase_label(efh, terminology.KeyworkingPhase.INTENSIVE) == "Delivery"
    assert (
        terminology.phase_label(terminology.ServiceModel.NHS_LD_AUTISM, terminology.KeyworkingPhase.INTENSIVE)
        == "Intensive"
    )


@pytest.mark.parametrize("path", sorted(PUBLISHED.glob("CodeSystem-*.json")), ids=lambda p: p.stem)
def test_published_code_systems_match_the_terminology_module(path: Path) -> None:
    published = json.loads(path.read_text())
    system_id = published["id"]
    if system_id not in terminology.CODE_SYSTEMS:
        pytest.skip(f"{system_id} is published by the profiles alone")
    assert published["url"] == urls.code_system(system_id)
    ours = [(c.code, c.display) for c in terminology.CODE_SYSTEMS[system_id]]
    assert [(c["code"], c["display"]) for c in published["concept"]] == ours


def _codes(enum: type[StrEnum]) -> list[str]:
    return [m.value for m in enum]


def test_codes_are_valid_fhir_codes() -> None:
    for enum in terminology.ENUM_SYSTEMS:
        for code in _codes(enum):
            assert code == code.strip() and " " not in code and code.islower(), code
