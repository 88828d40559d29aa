"""Domain → FHIR → domain is the identity for every record kind, and every resource produced is valid FHIR R4.

Resources go through JSON on the way (as they do through the store), and are handed back in reverse order (as a
search may return them), so neither Python objects nor ordering can make a round trip pass by accident.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.fhir import validate_structure
from mappings.keyworking import review
from mappings.keyworking.mapping import MAIN_RESOURCE, from_fhir, to_fhir
from mappings.keyworking.records import Record, ReviewMeeting
from tests.mappings import strategies

EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _through_json(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(reversed(json.loads(json.dumps(resources))))


def _assert_valid_fhir(resources: list[dict[str, Any]]) -> None:
    for resource in resources:
        assert validate_structure(resource) == [], (resource["resourceType"], validate_structure(resource))


def _round_trip(record: Record) -> Record:
    resources = to_fhir(record)
    assert resources[0]["resourceType"] == MAIN_RESOURCE[type(record)]
    assert resources[0]["id"] == record.id  # type: ignore[attr-defined]
    _assert_valid_fhir(resources)
    ids = [(r["resourceType"], r["id"]) for r in resources]
    assert len(ids) == len(set(ids)), ids
    return from_fhir(type(record), _through_json(resources))


@EXAMPLES
@given(strategies.people())
def test_person(record: Record) -> None:
    assert _round_trip(record) == record


@EXAMPLES
@given(strategies.register_entries())
def test_register_entry(record: Record) -> None:
    assert _round_trip(record) == record


@EXAMPLES
@given(strategies.cases())
def test_keyworking_case(record: Record) -> None:
    assert _round_trip(record) == record


@EXAMPLES
@given(strategies.care_teams())
def test_care_team(record: Record) -> None:
    assert _round_trip(record) == record


@EXAMPLES
@given(strategies.contacts())
def test_contact(record: Record) -> None:
    assert _round_trip(record) == record


@EXAMPLES
@given(strategies.review_meetings(with_task_ids=True))
def test_review_meeting(record: Record) -> None:
    assert _round_trip(record) == record


@EXAMPLES
@given(strategies.review_meetings())
def test_review_meeting_recommendations_get_derived_ids(meeting: ReviewMeeting) -> None:
    assert meeting.id is not None
    expected = meeting.model_copy(
        update={
            "recommendations": tuple(
                r if r.id else r.model_copy(update={"id": review.recommendation_id(meeting.id, n)})
                for n, r in enumerate(meeting.recommendations, start=1)
            )
        }
    )
    assert _round_trip(meeting) == expected


@settings(max_examples=60, deadline=None)
@given(strategies.any_record(), st.randoms())
def test_mapping_is_deterministic(record: Record, _: Any) -> None:
    """The same record always gives the same JSON (golden files and idempotent PUTs depend on it)."""
    assert json.dumps(to_fhir(record)) == json.dumps(to_fhir(type(record).model_validate(record.model_dump())))
