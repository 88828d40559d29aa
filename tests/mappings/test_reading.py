"""Reading FHIR that another system wrote: what fits our records is read, what does not fails with its path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gateway.conformance.fhirxml import FhirXmlConverter, Navigator
from gateway.conformance.loader import default_definitions
from mappings.keyworking import care_team, case, contact, person, register, review
from mappings.keyworking.errors import NotOurShape
from mappings.keyworking.mapping import to_fhir
from mappings.keyworking.records import KeyworkingCase, Record
from tests.mappings.test_golden import KINDS, RECORDS

UKCORE = Path(__file__).parents[1] / "conformance" / "fixtures" / "ukcore-examples"


def _ukcore(name: str) -> dict[str, Any]:
    converted: dict[str, Any] = FhirXmlConverter(Navigator(default_definitions())).convert(
        (UKCORE / f"UKCore-{name}-Example.xml").read_bytes()
    )
    return converted


def _golden(kind: str) -> list[dict[str, Any]]:
    record: Record = KINDS[kind].model_validate_json((RECORDS / f"{kind}.json").read_text())
    return copy.deepcopy(to_fhir(record))


def test_a_uk_core_patient_reads_as_a_person() -> None:
    richard = person.from_fhir([_ukcore("Patient-RichardSmith")])
    assert (richard.nhs_number, richard.nhs_number_verification, richard.postcode) == ("9912003888", "01", "LS17 7DF")
    assert (richard.name.family, richard.name.given, richard.sex) == ("SMITH", ("Richard",), "male")


def test_a_patient_with_an_invalid_nhs_number_is_not_read() -> None:
    with pytest.raises(NotOurShape, match="nhs_number") as caught:
        person.from_fhir([_ukcore("Patient-BabyPatient")])  # 9912003890 fails Modulus 11
    assert caught.value.path == "Patient"


def _break(kind: str, change: Any) -> list[dict[str, Any]]:
    resources = _golden(kind)
    change(resources[0])
    return resources


@pytest.mark.parametrize(
    ("reader", "kind", "change", "path"),
    [
        (person.from_fhir, "person", lambda r: r.pop("birthDate"), "Patient.birthDate"),
        (person.from_fhir, "person", lambda r: r.update(birthDate="2011-05"), "Patient.birthDate"),
        (register.from_fhir, "register-entry", lambda r: r.update(type=[{"text": "x"}]), "EpisodeOfCare.type"),
        (register.from_fhir, "register-entry", lambda r: r.update(status="onhold"), "EpisodeOfCare.status"),
        (case.from_fhir, "keyworking-case", lambda r: r.pop("extension"), "EpisodeOfCare.extension"),
        (case.from_fhir, "keyworking-case", lambda r: r["careManager"].pop("display"), "EpisodeOfCare.careManager"),
        (care_team.from_fhir, "care-team", lambda r: r["participant"][0].pop("role"), "CareTeam.participant[0].role"),
        (contact.from_fhir, "contact", lambda r: r.update(status="in-progress"), "Encounter.status"),
        (contact.from_fhir, "contact", lambda r: r["period"].update(start="2025-03-12"), "Encounter.period.start"),
        (review.from_fhir, "review-meeting", lambda r: r.update(type=[{"text": "CTR"}]), "Encounter.type[0]"),
    ],
)
def test_foreign_shapes_fail_with_the_element_path(reader: Any, kind: str, change: Any, path: str) -> None:
    with pytest.raises(NotOurShape) as caught:
        reader(_break(kind, change))
    assert caught.value.path == path


def test_reading_needs_exactly_one_main_resource() -> None:
    resources = _golden("keyworking-case")
    with pytest.raises(NotOurShape, match="expected exactly one EpisodeOfCare, got 2"):
        case.from_fhir(resources + resources)
    with pytest.raises(NotOurShape, match="got 0"):
        case.from_fhir([])


def test_a_tampered_record_is_refused_by_the_record_rules() -> None:
    resources = _golden("keyworking-case")
    resources[0]["extension"][1]["valuePositiveInt"] = None  # an intensive phase without a cycle
    with pytest.raises(NotOurShape, match="cycle"):
        case.from_fhir(resources)


def test_unrelated_resources_are_ignored() -> None:
    entry = _golden("register-entry")
    other = copy.deepcopy(entry[2])
    other["focus"] = [{"reference": "EpisodeOfCare/someone-else"}]
    other["id"] = "someone-else-rating-1"
    assert register.from_fhir([*entry, other]) == register.from_fhir(entry)
    assert isinstance(case.from_fhir(_golden("keyworking-case")), KeyworkingCase)
