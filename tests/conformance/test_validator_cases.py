"""The HL7 validator test cases (FHIR/fhir-test-cases, R4, JSON) we claim to support: valid/invalid agreement.

The selection and the reasons for each exclusion are in tests/fixtures/validator-cases/README.md. Each case loads
its supporting StructureDefinitions (XML ones through our converter, snapshots generated when missing) into a copy
of the committed definitions, parses the instance with the gateway's JSON parser (orjson: comments, trailing commas
and unquoted names are rejected), and validates it like ``$validate`` does: structure, base type, then the case's
profile step if it has one. We compare "has errors" with the Java reference, not the error count.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.conformance.elements import Navigator
from gateway.conformance.fhirxml import FhirXmlConverter
from gateway.conformance.loader import Definitions
from gateway.conformance.snapshot import generate_snapshot
from gateway.conformance.validator import ProfileValidator
from gateway.errors import Issue
from gateway.validation import structure_issues

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "validator-cases"
CASES: list[dict[str, Any]] = json.loads((FIXTURES / "cases.json").read_text())["selected"]


def _load(name: str, converter: FhirXmlConverter) -> dict[str, Any]:
    raw = (FIXTURES / "files" / name).read_bytes()
    data = converter.convert(raw) if name.endswith(".xml") else orjson.loads(raw)
    assert isinstance(data, dict)
    return data


def _case_definitions(case: dict[str, Any], definitions: Definitions) -> tuple[Definitions, str | None]:
    own = definitions.copy()
    converter = FhirXmlConverter(Navigator(own))
    supporting = [_load(name, converter) for name in case["supporting"]]
    if case["profile"] and case["profile"] not in case["supporting"]:
        supporting.append(_load(case["profile"], converter))
    own.add_all(supporting)
    for resource in supporting:
        if resource.get("resourceType") == "StructureDefinition" and "snapshot" not in resource:
            own.add(generate_snapshot(resource, own))
    profile_url = _load(case["profile"], converter)["url"] if case["profile"] else None
    return own, profile_url


def _errors(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity in ("error", "fatal")]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case_agrees_with_the_reference_validator(case: dict[str, Any], definitions: Definitions) -> None:
    own, profile_url = _case_definitions(case, definitions)
    validator = ProfileValidator(own)
    try:
        resource = orjson.loads((FIXTURES / "files" / case["file"]).read_bytes())
    except orjson.JSONDecodeError:
        assert case["expected_base_errors"] > 0, "the parser rejected JSON the reference accepts"
        return
    base = _errors(structure_issues(resource) + validator.validate(resource))
    assert bool(base) == (case["expected_base_errors"] > 0), base
    if profile_url is not None:
        profiled = _errors(structure_issues(resource) + validator.validate(resource, [profile_url]))
        assert bool(profiled) == (case["expected_profile_errors"] > 0), profiled


def test_the_selection_covers_valid_and_invalid_cases() -> None:
    invalid = [c for c in CASES if c["expected_base_errors"] or c["expected_profile_errors"]]
    assert len(CASES) == 26
    assert 0 < len(invalid) < len(CASES)
