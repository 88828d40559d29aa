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
from hypothesis import HealthCheck, given, settings

from gateway.validation import validate_fully, validate_resource
from mappings.keyworking import terminology, urls
from mappings.keyworking.mapping import to_fhir
from mappings.keyworking.records import KeyworkingCase, Record
from tests.mappings import strategies

PUBLISHED = Path(__file__).parents[2] / "profiles" / "keyworking"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(strategies.any_record())
def test_every_mapped_resource_is_accepted_by_the_store(record: Record) -> None:
    for resource in to_fhir(record):
        assert list(validate_resource(resource)) == [], resource


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(strategies.any_record())
def test_every_mapped_resource_passes_strict_validation(record: Record) -> None:
    # As $validate and the HL7 validator judge it: an extension we emit but do not define is an error here, as is
    # one used outside its context (e.g. the phase on a statusHistory entry).
    for resource in to_fhir(record):
        assert [i for i in validate_fully(resource) if i.severity in ("error", "fatal")] == [], resource


def test_a_referred_case_is_accepted_by_the_store() -> None:
    case = KeyworkingCase.model_validate(
        {
            "id": "c",
            "person_id": "p",
            "service_model": "nhs-ld-autism",
            "history": [{"phase": "referred", "start": "2025-01-06"}],
        }
    )
    episode = to_fhir(case)[0]
    assert "careManager" not in episode
    assert list(validate_resource(episode)) == []


def test_an_active_case_without_a_keyworker_is_refused() -> None:
    case = KeyworkingCase.model_validate(
        {
            "id": "c",
            "person_id": "p",
            "service_model": "nhs-ld-autism",
            "history": [
                {"phase": "referred", "start": "2025-01-06", "end": "2025-01-20"},
                {"phase": "allocated", "start": "2025-01-20"},
            ],
            "keyworkers": [{"name": "Kim Ashworth"}],
        }
    )
    episode = to_fhir(case)[0]
    assert list(validate_resource(episode)) == []
    del episode["careManager"]
    assert [(i.code, i.expression) for i in validate_resource(episode)] == [("invariant", ("EpisodeOfCare",))]


def test_every_extension_the_mappings_emit_is_published() -> None:
    emitted = {value for name, value in vars(urls).items() if name.startswith("EXT_")}
    published = {
        json.loads(path.read_text())["url"]
        for path in PUBLISHED.glob("StructureDefinition-*.json")
        if json.loads(path.read_text())["type"] == "Extension"
    }
    assert emitted <= published, sorted(emitted - published)


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


@pytest.mark.parametrize("system_id", list(terminology.CODE_SYSTEMS))
def test_published_code_systems_match_the_terminology_module(system_id: str) -> None:
    published = json.loads((PUBLISHED / f"CodeSystem-{system_id}.json").read_text())
    assert published["url"] == urls.code_system(system_id)
    assert published["title"] == terminology.CODE_SYSTEM_INFO[system_id].title
    ours = [(c.code, c.display, c.definition) for c in terminology.CODE_SYSTEMS[system_id]]
    assert [(c["code"], c["display"], c["definition"]) for c in published["concept"]] == ours
    assert published["count"] == len(ours) and published["valueSet"] == urls.value_set(system_id)
    value_set = json.loads((PUBLISHED / f"ValueSet-{system_id}.json").read_text())
    assert value_set["url"] == urls.value_set(system_id)
    includes = value_set["compose"]["include"]
    assert includes[0] == {"system": urls.code_system(system_id)}
    snomed = [(c["code"], c["display"]) for i in includes[1:] if i["system"] == urls.SNOMED for c in i["concept"]]
    assert sorted(snomed) == sorted(terminology.SNOMED_EQUIVALENTS.get(system_id, {}).values())


def test_no_code_system_is_published_outside_the_terminology_module() -> None:
    published = {path.stem.removeprefix("CodeSystem-") for path in PUBLISHED.glob("CodeSystem-*.json")}
    assert published == set(terminology.CODE_SYSTEMS)
    value_sets = {path.stem.removeprefix("ValueSet-") for path in PUBLISHED.glob("ValueSet-*.json")}
    assert value_sets == set(terminology.CODE_SYSTEMS)


def _codes(enum: type[StrEnum]) -> list[str]:
    return [m.value for m in enum]


def test_codes_are_valid_fhir_codes() -> None:
    for enum in terminology.ENUM_SYSTEMS:
        for code in _codes(enum):
            assert code == code.strip() and " " not in code and code.islower(), code
