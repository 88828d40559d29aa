"""Kick-off parameters: every bad value is a 400 naming its parameter; good ones parse (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import InvalidRequest
from gateway.export.params import ONLY_WHEN_ASKED, parse_kickoff, parse_since, parse_types
from gateway.store.timeutil import from_datetime
from mappings.fhir import SUPPORTED_TYPES

ASYNC = {"prefer": "respond-async"}
TYPES = sorted(SUPPORTED_TYPES)


@given(st.lists(st.sampled_from(TYPES), min_size=1))
def test_known_types_parse_sorted_and_unique(types: list[str]) -> None:
    assert parse_types(",".join(types), SUPPORTED_TYPES) == tuple(sorted(set(types)))


def test_default_types_leave_out_the_audit_trail() -> None:
    assert set(parse_types(None, SUPPORTED_TYPES)) == set(SUPPORTED_TYPES) - ONLY_WHEN_ASKED


@given(st.text(min_size=1).filter(lambda t: t.strip() not in SUPPORTED_TYPES and "," not in t))
def test_unknown_type_names_type(name: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_kickoff([("_type", f"Patient,{name}")], ASYNC, SUPPORTED_TYPES)
    assert raised.value.issues[0].expression == ("_type",)


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)))
def test_instants_parse_to_their_microsecond(moment: datetime) -> None:
    text = moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
    assert parse_since(text) == from_datetime(moment)


@given(st.text())
def test_since_is_an_instant_or_a_400_naming_since(text: str) -> None:
    try:
        parse_since(text)
    except InvalidRequest as exc:
        assert exc.issues[0].expression == ("_since",)


@given(st.text().filter(lambda t: t not in ("application/fhir+ndjson", "application/ndjson", "ndjson")))
def test_other_output_formats_are_refused(fmt: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_kickoff([("_outputFormat", fmt)], ASYNC, SUPPORTED_TYPES)
    assert raised.value.issues[0].expression == ("_outputFormat",)


def test_prefer_accept_and_repeats() -> None:
    with pytest.raises(InvalidRequest, match="Prefer"):
        parse_kickoff([], {}, SUPPORTED_TYPES)
    with pytest.raises(InvalidRequest, match="Accept"):
        parse_kickoff([], {**ASYNC, "accept": "text/html"}, SUPPORTED_TYPES)
    with pytest.raises(InvalidRequest, match="_type"):
        parse_kickoff([("_type", "Patient"), ("_type", "Group")], ASYNC, SUPPORTED_TYPES)
    found = parse_kickoff([("_since", "2026-01-31T09:00:00+01:00")], {**ASYNC, "accept": "*/*"}, SUPPORTED_TYPES)
    assert found.since == from_datetime(datetime(2026, 1, 31, 8, 0, tzinfo=UTC))
