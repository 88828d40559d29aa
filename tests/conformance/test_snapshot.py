"""Snapshot generation from differentials, and the committed profiles/ being what the build script makes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.conformance.build import load_base
from gateway.conformance.keyworking import build_keyworking
from gateway.conformance.loader import Definitions, profiles_dir
from gateway.conformance.snapshot import SnapshotError, generate_snapshot, split_id


def _element(structure: dict[str, Any], element_id: str) -> dict[str, Any]:
    return next(e for e in structure["snapshot"]["element"] if e["id"] == element_id)


def test_split_id_keeps_slices_and_choices_whole() -> None:
    assert split_id("Patient.identifier:nhsNumber.system") == ["Patient", "identifier:nhsNumber", "system"]
    assert split_id("Extension.value[x]") == ["Extension", "value[x]"]


def test_ukcore_patient_snapshot_has_the_nhs_number_slice(definitions: Definitions) -> None:
    patient = definitions.structure("https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient")
    assert patient is not None
    system = _element(patient, "Patient.identifier:nhsNumber.system")
    assert system["fixedUri"] == "https://fhir.nhs.uk/Id/nhs-number"
    assert system["min"] == 1
    assert _element(patient, "Patient.identifier:nhsNumber.value")["min"] == 1
    assert _element(patient, "Patient.identifier")["slicing"]["discriminator"] == [{"path": "system", "type": "value"}]
    ids = [e["id"] for e in patient["snapshot"]["element"]]
    assert ids.index("Patient.identifier") < ids.index("Patient.identifier:nhsNumber") < ids.index("Patient.active")


def test_generated_snapshot_merges_cardinality_and_adds_children(definitions: Definitions) -> None:
    profile = {
        "resourceType": "StructureDefinition",
        "url": "https://example.org/StructureDefinition/t",
        "type": "Task",
        "kind": "resource",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Task",
        "derivation": "constraint",
        "differential": {
            "element": [
                {"id": "Task.owner", "path": "Task.owner", "min": 1},
                {"id": "Task.restriction.period.end", "path": "Task.restriction.period.end", "min": 1},
            ]
        },
    }
    snapshot = generate_snapshot(profile, definitions.copy())
    assert _element(snapshot, "Task.owner")["min"] == 1
    end = _element(snapshot, "Task.restriction.period.end")
    assert end["path"] == "Task.restriction.period.end"
    assert end["min"] == 1
    assert _element(snapshot, "Task.restriction.period.start")["min"] == 0


def test_unknown_element_in_a_differential_is_an_error(definitions: Definitions) -> None:
    profile = {
        "url": "https://example.org/StructureDefinition/bad",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Task",
        "differential": {"element": [{"id": "Task.colour", "path": "Task.colour", "min": 1}]},
    }
    with pytest.raises(SnapshotError):
        generate_snapshot(profile, definitions.copy())


def test_committed_keyworking_profiles_are_what_the_build_makes(tmp_path: Path) -> None:
    root = profiles_dir()
    build_keyworking(_base_and_ukcore(root), tmp_path)
    committed = sorted(p.name for p in (root / "keyworking").glob("*.json"))
    assert sorted(p.name for p in tmp_path.glob("*.json")) == committed
    for name in committed:
        assert orjson.loads((tmp_path / name).read_bytes()) == orjson.loads((root / "keyworking" / name).read_bytes())


def _base_and_ukcore(root: Path) -> Definitions:
    definitions = load_base(root / "base")
    ukcore = load_base(root / "ukcore")
    definitions.add_all([*ukcore.structures.values(), *ukcore.value_sets.values(), *ukcore.code_systems.values()])
    return definitions


def test_every_generated_snapshot_is_consistent_with_its_differential(definitions: Definitions) -> None:
    checked = 0
    for url, structure in definitions.structures.items():
        if "differential" not in structure:
            continue
        ids = {e["id"] for e in structure["snapshot"]["element"]}
        for element in structure["snapshot"]["element"]:
            assert ".".join(p.split(":")[0] for p in split_id(element["id"])) == element["path"], (url, element["id"])
        for diff in structure["differential"]["element"]:
            segments = split_id(diff["id"])
            # a type "slice" of a choice (value[x]:valueQuantity) is merged into the choice element itself
            choice = [s.split(":")[0] if s.split(":")[0].endswith("[x]") else s for s in segments]
            assert diff["id"] in ids or ".".join(choice) in ids, (url, diff["id"])
        checked += 1
    assert checked >= 50
