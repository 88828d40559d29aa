"""The UK Core examples (XML from shared/samples/ukcore, copied here) convert to JSON and pass their profiles."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gateway.conformance.fhirxml import FhirXmlConverter, FhirXmlError
from gateway.conformance.validator import ProfileValidator
from gateway.validation import structure_issues

EXAMPLES = sorted((Path(__file__).parent / "fixtures" / "ukcore-examples").glob("*.xml"))
UKCORE = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-"
#: Extensions these examples use whose definitions are not in the copied UK Core sample.
NOT_IN_SAMPLE = (
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-DischargeMethod",
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-AdmissionMethod",
)


def _errors(issues: list[Any]) -> list[Any]:
    return [i for i in issues if i.severity in ("error", "fatal")]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_passes_its_ukcore_profile(path: Path, converter: FhirXmlConverter, lenient: ProfileValidator) -> None:
    resource = converter.convert(path.read_bytes())
    profile = UKCORE + resource["resourceType"]
    assert lenient.knows(profile)
    assert structure_issues(resource) == []
    assert _errors(lenient.validate(resource, [profile])) == []


def test_strict_mode_reports_the_extensions_missing_from_the_sample(
    converter: FhirXmlConverter, strict: ProfileValidator
) -> None:
    path = next(p for p in EXAMPLES if "InpatientEncounter" in p.name)
    resource = converter.convert(path.read_bytes())
    errors = _errors(strict.validate(resource, [UKCORE + "Encounter"]))
    assert sorted(e.diagnostics.split()[2] for e in errors) == sorted(NOT_IN_SAMPLE)


def _richard_smith(converter: FhirXmlConverter) -> dict[str, Any]:
    path = next(p for p in EXAMPLES if "RichardSmith" in p.name)
    return converter.convert(path.read_bytes())


def test_converted_primitives_have_json_types(converter: FhirXmlConverter) -> None:
    patient = _richard_smith(converter)
    assert patient["resourceType"] == "Patient"
    assert isinstance(patient["identifier"], list)
    assert isinstance(patient["name"][0]["given"], list)
    assert patient["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml"')


def test_nhs_number_without_value_breaks_the_slice(converter: FhirXmlConverter, lenient: ProfileValidator) -> None:
    patient = _richard_smith(converter)
    broken = copy.deepcopy(patient)
    index = next(i for i, ident in enumerate(broken["identifier"]) if ident["system"].endswith("nhs-number"))
    del broken["identifier"][index]["value"]
    errors = _errors(lenient.validate(broken, [UKCORE + "Patient"]))
    assert [e.expression for e in errors] == [(f"Patient.identifier[{index}].value",)]


def test_unknown_verification_status_code_is_reported_with_its_path(
    converter: FhirXmlConverter, lenient: ProfileValidator
) -> None:
    patient = _richard_smith(converter)
    index = next(i for i, ident in enumerate(patient["identifier"]) if ident["system"].endswith("nhs-number"))
    extension = patient["identifier"][index]["extension"][0]
    extension["valueCodeableConcept"]["coding"][0]["code"] = "99"
    paths = {e.expression[0] for e in _errors(lenient.validate(patient, [UKCORE + "Patient"]))}
    assert f"Patient.identifier[{index}].extension[0].valueCodeableConcept" in paths


def test_xml_outside_the_fhir_namespace_is_refused(converter: FhirXmlConverter) -> None:
    with pytest.raises(FhirXmlError):
        converter.convert(b"<Patient><id value='x'/></Patient>")


def test_unknown_xml_element_is_refused(converter: FhirXmlConverter) -> None:
    with pytest.raises(FhirXmlError):
        converter.convert(b"<Patient xmlns='http://hl7.org/fhir'><colour value='x'/></Patient>")
