"""FHIR search from the outside, fuzzed: arbitrary query strings against the search compiler (known parameters with
any modifier, chain and prefix, dates of every shape, controls such as _count, _sort and _include, and names and
values that are pure noise), on SQLite and PostgreSQL, through the API and against the store directly.

The API answers 200 with a searchset Bundle or 400 with an OperationOutcome, never a server error; the store
returns results or raises :class:`InvalidSearch`.
"""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from gateway.errors import InvalidSearch
from gateway.store.repository import SqlFhirRepository
from gateway.store.searchparams import COMMON, parameters_for

TYPES = ["Patient", "EpisodeOfCare", "Encounter", "Observation", "Task", "CareTeam", "Provenance", "Flag"]
CONTROLS = ["_count", "_offset", "_sort", "_include", "_revinclude", "_summary", "_total", "_elements", "_id"]
MODIFIERS = [
    "",
    ":exact",
    ":contains",
    ":missing",
    ":not",
    ":text",
    ":Patient",
    ":above",
    ":below",
    ":iterate",
    ":identifier",
    ":of-type",
    ":",
]
PREFIXES = ["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", "zz"]
DATES = st.one_of(
    st.dates().map(str),
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "2024",
            "2024-02",
            "2024-02-30",
            "2024-13",
            "0000",
            "9999-12-31T23:59:59.999999+14:00",
            "2024-01-01T25:00",
            "2024-01-01T10:00:00Z",
            "2024-01-01T10:00:00+99:00",
            "-2024",
            "1e10",
            "２０２４",
            "2024-01-01T10:00:00.1234567890Z",
            "",
        ]
    ),
    st.text(max_size=25),
)
WORDS = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "http://loinc.org|1234-5",
            "|x",
            "x|",
            "|",
            "Patient/1",
            "Patient/",
            "x,y",
            "\\,",
            "\\",
            "$",
            "true",
            "false",
            "Patient:general-practitioner",
            "EpisodeOfCare:patient:Patient",
            "*",
            "-_lastUpdated",
            "birthdate,-_id",
            "99999999999999999999999",
            "0",
            "-1",
            "²",
            "٣",
        ]
    ),
)


def names_for(res_type: str) -> list[str]:
    return [p.name for p in (*COMMON, *parameters_for(res_type))] + CONTROLS


@st.composite
def queries(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
    res_type = draw(st.sampled_from(TYPES))
    params = []
    for _ in range(draw(st.integers(1, 4))):
        name = draw(st.sampled_from(names_for(res_type)) | st.text(max_size=12))
        name += draw(st.sampled_from(MODIFIERS))
        if draw(st.booleans()):
            name += "." + draw(st.sampled_from(["name", "identifier", "birthdate", "patient", "x", "subject.name"]))
        value = draw(st.sampled_from(PREFIXES)) + draw(DATES | WORDS)
        params.append((name, value))
    return res_type, params


def http_safe(text: str) -> bool:
    """What a URL can carry: any character but lone surrogates (percent-encoded as UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@pytest.fixture
async def seeded(repo: SqlFhirRepository) -> SqlFhirRepository:
    """A patient with an episode and an observation, so searches that match have something to render."""
    await repo.update(
        "Patient",
        "p1",
        {
            "resourceType": "Patient",
            "id": "p1",
            "birthDate": "2012-04-01",
            "name": [{"family": "Zoë", "given": ["Ann"]}],
        },
    )
    await repo.update(
        "EpisodeOfCare",
        "e1",
        {"resourceType": "EpisodeOfCare", "id": "e1", "status": "active", "patient": {"reference": "Patient/p1"}},
    )
    await repo.update(
        "Observation",
        "o1",
        {
            "resourceType": "Observation",
            "id": "o1",
            "status": "final",
            "code": {"text": "x"},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2024-02-03",
        },
    )
    return repo


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(query=queries())
@example(query=("Patient", [("_count", "99999999999999999999999")]))
@example(query=("Patient", [("birthdate", "ge10000-01-01")]))
@example(query=("Observation", [("date", "2024-01-01T10:00:00+99:00")]))
async def test_any_search_is_a_bundle_or_a_400(
    client: httpx.AsyncClient, seeded: SqlFhirRepository, query: tuple[str, list[tuple[str, str]]]
) -> None:
    res_type, params = query
    assume(all(http_safe(n) and http_safe(v) for n, v in params))
    answer = await client.get(f"/fhir/{res_type}?{urlencode(params)}")
    assert answer.status_code in (200, 400), answer.text
    body = answer.json()
    if answer.status_code == 200:
        assert body["resourceType"] == "Bundle" and body["type"] == "searchset"
    else:
        assert body["resourceType"] == "OperationOutcome" and body["issue"]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(query=queries())
async def test_the_store_answers_any_search_with_results_or_invalid_search(
    seeded: SqlFhirRepository, query: tuple[str, list[tuple[str, str]]]
) -> None:
    res_type, params = query
    assume(all(http_safe(n) and http_safe(v) for n, v in params))
    try:
        await seeded.search(res_type, params)
    except InvalidSearch:
        pass


@pytest.mark.parametrize(
    ("res_type", "params", "status"),
    [
        ("Patient", [("_count", "²")], 400),  # ValueError: str.isdigit() accepts superscripts, int() does not
        ("Patient", [("_offset", "99999999999999999999999")], 400),  # OverflowError (SQLite) / DataError int64 (PG)
        ("Patient", [("name", "a\x00b")], 400),  # PostgreSQL: CharacterNotInRepertoireError (SQLite answers)
        ("Patient", [("birthdate", "9999-12-31")], 200),  # OverflowError in gateway/store/dates.py (the range's end)
        ("Patient", [("_lastUpdated", "0001-01-01T00:00:00+14:00")], 200),  # OverflowError: before year 1 in UTC
    ],
    ids=["superscript-count", "huge-offset", "nul-in-value", "end-of-9999", "before-year-1"],
)
async def test_inputs_that_once_met_server_errors_are_answered(
    client: httpx.AsyncClient, db_url: str, res_type: str, params: list[tuple[str, str]], status: int
) -> None:
    answer = await client.get(f"/fhir/{res_type}?{urlencode(params)}")
    assert answer.status_code == status, answer.text
