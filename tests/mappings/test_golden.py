"""Golden files: one representative record of each kind and the exact FHIR it maps to.

Inputs are ``tests/mappings/records/<kind>.json`` (the domain API's request bodies, plus ids); the expected FHIR
is ``tests/fixtures/fhir/expected/<kind>.json`` (a JSON array, main resource first). A change in the mapping shows
up as a readable diff of these files. After an intended change, regenerate them with
``UPDATE_GOLDEN=1 .venv/bin/pytest tests/mappings/test_golden.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from gateway.validation import validate_resource
from mappings.fhir import validate_structure
from mappings.keyworking.mapping import from_fhir, to_fhir
from mappings.keyworking.records import CareTeam, Contact, KeyworkingCase, Person, Record, RegisterEntry, ReviewMeeting

RECORDS = Path(__file__).parent / "records"
EXPECTED = Path(__file__).parents[1] / "fixtures" / "fhir" / "expected"
KINDS: dict[str, type[Record]] = {
    "person": Person,
    "register-entry": RegisterEntry,
    "keyworking-case": KeyworkingCase,
    "care-team": CareTeam,
    "contact": Contact,
    "review-meeting": ReviewMeeting,
}


def _record(kind: str) -> Record:
    return KINDS[kind].model_validate_json((RECORDS / f"{kind}.json").read_text())


def _expected(kind: str) -> list[dict[str, Any]]:
    path = EXPECTED / f"{kind}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(to_fhir(_record(kind)), indent=2, ensure_ascii=False) + "\n")
    loaded: list[dict[str, Any]] = json.loads(path.read_text())
    return loaded


@pytest.mark.parametrize("kind", KINDS)
def test_mapping_matches_the_golden_file(kind: str) -> None:
    assert to_fhir(_record(kind)) == _expected(kind)


@pytest.mark.parametrize("kind", KINDS)
def test_the_golden_file_reads_back_as_the_record(kind: str) -> None:
    back = from_fhir(KINDS[kind], _expected(kind))
    record = _record(kind)
    if isinstance(record, ReviewMeeting):  # recommendations without an id get <meeting>-rec-<n>
        assert [r.id for r in back.recommendations] == [  # type: ignore[attr-defined]
            "cetr-amira-2025-02-rec-1",
            "cetr-amira-2025-02-rec-2",
            "cetr-amira-rec-camhs",
        ]
        back = back.model_copy(
            update={
                "recommendations": tuple(
                    r.model_copy(update={"id": o.id})
                    for r, o in zip(back.recommendations, record.recommendations, strict=True)
                )
            }  # type: ignore[attr-defined]
        )
    assert back == record


@pytest.mark.parametrize("kind", KINDS)
def test_golden_resources_are_valid_and_accepted_by_the_store(kind: str) -> None:
    """FHIR R4 structure, and the profile checks the repository runs on every write (UK Core and ours)."""
    for resource in _expected(kind):
        assert validate_structure(resource) == []
        assert list(validate_resource(resource)) == [], resource["id"]
