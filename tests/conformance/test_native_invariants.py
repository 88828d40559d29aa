"""The validator's native shortcuts for FHIRPath invariants agree with fhirpathpy.

A shortcut (``TRIVIALLY_TRUE``, ``TRIVIALLY_TRUE_EXPRESSIONS``) may only answer True when evaluating the invariant
with fhirpathpy would not fail it; ``DECIDED_EXPRESSIONS`` must give fhirpathpy's answer both ways. Values are
generated with hypothesis around the shapes the shortcuts look at.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import fhirpathpy
import pytest
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.conformance import validator as v

PER_1 = "start.hasValue().not() or end.hasValue().not() or (start <= end)"
CTM_1 = "onBehalfOf.exists() implies (member.resolve().iif(empty(), true, ofType(Practitioner).exists()))"
CON_5 = (
    "verificationStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/condition-ver-status' and "
    "code='entered-in-error').empty() or clinicalStatus.empty()"
)
KWG_EOC_1 = "status = 'active' implies careManager.exists()"


def evaluate(expression: str, resource: dict[str, Any], value: Any = None, type_name: str = "") -> Any:
    """fhirpathpy's result, as the validator evaluates an invariant (on the resource, or on an element of it)."""
    compiled = fhirpathpy.compile(expression, models["r4"], v._FHIRPATH_OPTIONS)
    node = resource if value is None else ResourceNode.create_node(value, type_name)  # type: ignore[no-untyped-call]
    return compiled(node, {"resource": resource, "rootResource": resource})


def shortcut(expression: str) -> Any:
    found = v.TRIVIALLY_TRUE_EXPRESSIONS.get(expression)
    assert found is not None, expression
    return found


# -- per-1 ------------------------------------------------------------------------------------------------------

ZONES = [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30))]


@st.composite
def instants(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 12, 31)))
    shape = draw(st.sampled_from(["date", "seconds", "millis"]))
    if shape == "date":
        return moment.date().isoformat()
    zone = draw(st.sampled_from(ZONES))
    text = moment.replace(tzinfo=zone).isoformat(timespec="seconds" if shape == "seconds" else "milliseconds")
    return text.replace("+00:00", "Z") if draw(st.booleans()) else text


@settings(max_examples=300, deadline=None)
@given(start=instants(), end=instants())
def test_per_1_shortcut_never_hides_a_failure(start: str, end: str) -> None:
    period = {"start": start, "end": end}
    encounter = {"resourceType": "Encounter", "id": "e", "status": "finished", "class": {}, "period": period}
    result = evaluate(PER_1, encounter, period, "Period")
    if v.TRIVIALLY_TRUE["per-1"](period):
        assert result == [True], (start, end, result)


@settings(max_examples=200, deadline=None)
@given(start=st.dates(date(1990, 1, 1), date(2040, 12, 31)), days=st.integers(-400, 400), zone=st.sampled_from(ZONES))
def test_per_1_shortcut_decides_same_shape_periods(start: date, days: int, zone: timezone) -> None:
    """Same-shape values (both dates, or both dateTimes in one zone) are the writes' periods: decided natively."""
    end = start + timedelta(days=days)
    for first, last in [
        (start.isoformat(), end.isoformat()),
        (
            datetime(start.year, start.month, start.day, 9, tzinfo=zone).isoformat(),
            datetime(end.year, end.month, end.day, 9, tzinfo=zone).isoformat(),
        ),
    ]:
        period = {"start": first, "end": last}
        encounter = {"resourceType": "Encounter", "id": "e", "status": "finished", "class": {}, "period": period}
        assert v.TRIVIALLY_TRUE["per-1"](period) == (days >= 0)
        assert evaluate(PER_1, encounter, period, "Period") == [days >= 0]


def test_per_1_leaves_mixed_shapes_to_fhirpath() -> None:
    assert not v.TRIVIALLY_TRUE["per-1"]({"start": "2024-01-01", "end": "2024-01-01T10:00:00Z"})
    assert not v.TRIVIALLY_TRUE["per-1"]({"start": "2024-01-01T10:00:00+01:00", "end": "2024-01-01T10:30:00Z"})
    assert v.TRIVIALLY_TRUE["per-1"]({"start": "2024-01-01"})


# -- ctm-1 ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "participant",
    [
        {"member": {"reference": "Practitioner/p"}, "onBehalfOf": {"reference": "Organization/o"}},
        {"member": {"reference": "PractitionerRole/r"}, "onBehalfOf": {"reference": "Organization/o"}},
        {"onBehalfOf": {"reference": "Organization/o"}},
    ],
)
def test_ctm_1_cannot_be_evaluated_when_on_behalf_of_is_present(participant: dict[str, Any]) -> None:
    """fhirpathpy has no resolve(): the invariant was never checked, so the shortcut changes nothing.

    If fhirpathpy learns resolve(), this fails and the shortcut must become a real check."""
    team = {"resourceType": "CareTeam", "id": "t", "participant": [participant]}
    with pytest.raises(Exception, match="resolve"):
        evaluate(CTM_1, team, participant, "CareTeam.participant")
    assert shortcut(CTM_1)(participant)


def test_ctm_1_cannot_be_evaluated_without_on_behalf_of_either() -> None:
    """fhirpathpy evaluates both sides of ``implies``: resolve() is reached (and raises) whatever the data."""
    participant = {"member": {"reference": "Organization/o"}}
    team = {"resourceType": "CareTeam", "id": "t", "participant": [participant]}
    with pytest.raises(Exception, match="resolve"):
        evaluate(CTM_1, team, participant, "CareTeam.participant")


# -- con-5 ------------------------------------------------------------------------------------------------------

VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
codings = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "system": st.sampled_from([VER, "http://example.org/other"]),
            "code": st.sampled_from(["confirmed", "provisional", "entered-in-error", "refuted"]),
        },
    ),
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(coding=codings, clinical=st.booleans())
def test_con_5_shortcut_never_hides_a_failure(coding: list[dict[str, str]], clinical: bool) -> None:
    condition: dict[str, Any] = {
        "resourceType": "Condition",
        "id": "c",
        "subject": {"reference": "Patient/p"},
        "verificationStatus": {"coding": coding},
    }
    if clinical:
        condition["clinicalStatus"] = {"coding": [{"system": "x", "code": "active"}]}
    result = evaluate(CON_5, condition)
    if shortcut(CON_5)(condition):
        assert result == [True], (coding, clinical, result)
    else:  # the shortcut declines only when a coding says entered-in-error and there is a clinical status
        assert clinical and any(c.get("code") == "entered-in-error" for c in coding)


# -- kwg-eoc-1 --------------------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    status=st.one_of(st.none(), st.sampled_from(["planned", "waitlist", "active", "onhold", "finished", "cancelled"])),
    manager=st.booleans(),
)
def test_kwg_eoc_1_shortcut_never_hides_a_failure(status: str | None, manager: bool) -> None:
    episode: dict[str, Any] = {"resourceType": "EpisodeOfCare", "id": "e", "patient": {"reference": "Patient/p"}}
    if status is not None:
        episode["status"] = status
    if manager:
        episode["careManager"] = {"reference": "Practitioner/p"}
    result = evaluate(KWG_EOC_1, episode)
    if shortcut(KWG_EOC_1)(episode):
        assert result != [False], (status, manager, result)
    else:
        assert result in ([False], []), (status, manager, result)
