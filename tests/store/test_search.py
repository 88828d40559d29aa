"""Search on both databases: every parameter type, modifier, prefix, chain, sort, paging and include."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import InvalidSearch
from gateway.store.dates import date_range
from gateway.store.indexing import normalise
from gateway.store.repository import SqlFhirRepository

NHS = "https://fhir.nhs.uk/Id/nhs-number"
LOCAL = "https://example.org/Id/child"
EOC = "EpisodeOfCare"


async def make(repo: SqlFhirRepository, body: dict[str, Any]) -> str:
    result = await repo.create(body)
    assert result.resource is not None
    return result.resource.res_id


async def ids(repo: SqlFhirRepository, res_type: str, *params: tuple[str, str]) -> set[str]:
    result = await repo.search(res_type, list(params))
    return {r.res_id for r in result.matches}


@pytest.fixture
async def ics(repo: SqlFhirRepository) -> dict[str, str]:
    """Two young people, two keyworkers, their episodes, care teams and contacts."""
    zoe = await make(
        repo,
        {
            "resourceType": "Patient",
            "identifier": [{"system": NHS, "value": "9000000009"}, {"system": LOCAL, "value": "C-1"}],
            "name": [{"family": "Ålvarez", "given": ["Zoë"]}],
            "birthDate": "2012-04-01",
            "gender": "female",
        },
    )
    sam = await make(
        repo,
        {
            "resourceType": "Patient",
            "identifier": [{"system": NHS, "value": "9000000017"}],
            "name": [{"family": "Alvey", "given": ["Sam"]}],
            "birthDate": "2008-11-30",
        },
    )
    kw1 = await make(repo, {"resourceType": "Practitioner", "name": [{"family": "Keyworker", "given": ["Kim"]}]})
    kw2 = await make(repo, {"resourceType": "Practitioner", "name": [{"family": "Other", "given": ["Olu"]}]})
    active = await make(
        repo,
        {
            "resourceType": EOC,
            "status": "active",
            "patient": {"reference": f"Patient/{zoe}"},
            "careManager": {"reference": f"Practitioner/{kw1}"},
            "period": {"start": "2024-01-10"},
        },
    )
    finished = await make(
        repo,
        {
            "resourceType": EOC,
            "status": "finished",
            "patient": {"reference": f"Patient/{zoe}"},
            "careManager": {"reference": f"Practitioner/{kw2}"},
            "period": {"start": "2022-01-10", "end": "2023-01-09"},
        },
    )
    team = await make(
        repo,
        {
            "resourceType": "CareTeam",
            "status": "active",
            "subject": {"reference": f"Patient/{zoe}"},
            "participant": [{"member": {"reference": f"Practitioner/{kw1}"}}],
        },
    )
    await make(
        repo,
        {"resourceType": "CareTeam", "status": "inactive", "subject": {"reference": f"Patient/{zoe}"}},
    )
    await make(repo, {"resourceType": "CareTeam", "status": "active", "subject": {"reference": f"Patient/{sam}"}})
    encounters = {}
    for day in ("2024-03-01", "2024-03-05", "2024-04-20"):
        encounters[day] = await make(
            repo,
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
                "subject": {"reference": f"Patient/{zoe}"},
                "episodeOfCare": [{"reference": f"EpisodeOfCare/{active}"}],
                "period": {"start": f"{day}T10:00:00Z", "end": f"{day}T11:00:00Z"},
            },
        )
    return {
        "zoe": zoe,
        "sam": sam,
        "kw1": kw1,
        "kw2": kw2,
        "active": active,
        "finished": finished,
        "team": team,
        **{f"enc {d}": i for d, i in encounters.items()},
    }


# -- token -------------------------------------------------------------------------------------------------------


async def test_token_forms(repo: SqlFhirRepository, ics: dict[str, str]) -> None:
    zoe, sam = ics["zoe"], ics["sam"]
    assert await ids(repo, "Patient", ("identifier", f"{NHS}|9000000009")) == {zoe}
    assert await ids(repo, "Patient", ("identifier", "9000000017")) == {sam}
    assert await ids(repo, "Patient", ("identifier", f"{LOCAL}|")) == {zoe}
    assert await ids(repo, "Patient", ("identifier", f"{LOCAL}|9000000009")) == set()
    assert await ids(repo, "Patient", ("identifier", "|9000000009")) == set()  # it has a system
    assert await ids(repo, "Patient", ("gender", "female")) == {zoe}
    assert await ids(repo, "Patient", ("gender:not", "female")) >= {sam}
    assert await ids(repo, "Patient", ("identifier", f"{NHS}|9000000009,{NHS}|9000000017")) == {zoe, sam}


async def test_repeated_parameters_are_anded(repo: SqlFhirRepository, ics: dict[str, str]) -> None:
    both = await ids(repo, "CareTeam", ("patient", ics["zoe"]), ("status", "active"))
    assert both == {ics["team"]}


# -- reference and chains ----------------------------------------------------------------------------------------


async def test_reference_forms(repo: SqlFhirRepository, ics: dict[str, str]) -> None:
    zoe = ics["zoe"]
    expected = {ics["active"], ics["finished"]}
    assert await ids(repo, EOC, ("patient", zoe)) == expected
    assert await ids(repo, EOC, ("patient", f"Patient/{zoe}")) == expected
    assert await ids(repo, "Encounter", ("subject:Patient", zoe)) == {v for k, v in ics.items() if k.startswith("enc")}
    assert await ids(repo, EOC, ("care-manager", f"Practitioner/{ics['kw1']}")) == {ics["active"]}
    assert await ids(repo, "CareTeam", ("participant", f"Practitioner/{ics['kw1']}")) == {ics["team"]}


async def test_chained_identifier(repo: SqlFhirRepository, ics: dict[str, str]) -> None:
    found = await ids(repo, "CareTeam", ("patient.identifier", f"{NHS}|9000000009"), ("status", "active"))
    assert found == {ics["team"]}
    assert await ids(repo, EOC, ("care-manager.name", "keyw")) == {ics["active"]}
    with pytest.raises(InvalidSearch):
        await repo.search("CareTeam", [("status.identifier", "x")])


# -- date --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "days"),
    [
        ("2024-03-05", {"2024-03-05"}),
        ("eq2024-03", {"2024-03-01", "2024-03-05"}),
        ("ne2024-03", {"2024-04-20"}),
        ("gt2024-03-05", {"2024-04-20"}),
        ("ge2024-03-05", {"2024-03-05", "2024-04-20"}),
        ("lt2024-03-05", {"2024-03-01"}),
        ("le2024-03-05", {"2024-03-01", "2024-03-05"}),
        ("sa2024-03-05", {"2024-04-20"}),
        ("eb2024-03-05", {"2024-03-01"}),
        ("2024", {"2024-03-01", "2024-03-05", "2024-04-20"}),
        ("ge2024-03-05T10:30:00Z", {"2024-03-05", "2024-04-20"}),
    ],
)
async def test_date_prefixes(repo: SqlFhirRepository, ics: dict[str, str], value: str, days: set[str]) -> None:
    assert await ids(repo, "Encounter", ("date", value)) == {ics[f"enc {d}"] for d in days}


async def test_open_period_runs_to_the_end_of_time(repo: SqlFhirRepository, ics: dict[str, str]) -> None:
    assert await ids(repo, EOC, ("date", "ge2030-01-01")) == {ics["active"]}
    assert await ids(repo, EOC, ("date", "lt2023-01-01")) == {ics["finished"]}


async def test_bad_date_is_an_error(repo: SqlFhirRepository, ics: dict[str, str]) -> None:
    with pytest.raises(InvalidSearch, match="date"):
        await repo.search("Encounter", [("date", "ge2024-13-45")])


# -- string ------------------------------------------------------------------------------------------------------


async def test_string_matching(repo: SqlFhirRepository, ics: dict[str, str]) -> None:
    zoe, sam = ics["zoe"], ics["sam"]
    assert await ids(repo, "Patient", ("family", "alv")) == {zoe, sam}  # prefix, accents and case ignored
    assert await ids(repo, "Patient", ("name", "zoe")) == {zoe}
    assert await ids(repo, "Patient", ("family:exact", "Ålvarez")) == {zoe}
    assert await ids(repo, "Patient", ("family:exact", "alvarez")) == set()
    assert await ids(repo, "Patient", ("family:contains", "VARE")) == {zoe}
    assert await ids(repo, "Patient", ("family", "lvarez")) == set()  # not a prefix
    assert await ids(repo, "Patient", ("family", "100%")) == set()  # LIKE metacharacters are literal


# -- missing, unknown, lenient -----------------------------------------------------------------------------------


async def test_missing(repo: SqlFhirRepository, ics: dict[str, str]) -> None:
    assert ics["sam"] in await ids(repo, "Patient", ("gender:missing", "true"))
    assert ics["zoe"] not in await ids(repo, "Patient", ("gender:missing", "true"))
    assert ics["zoe"] in await ids(repo, "Patient", ("gender:missing", "false"))


async def test_unknown_parameter_is_an_error_unless_lenient(repo: SqlFhirRepository, ics: dict[str, str]) -> None:
    with pytest.raises(InvalidSearch, match="shoe-size"):
        await repo.search("Patient", [("shoe-size", "9")])
    with pytest.raises(InvalidSearch, match="modifier"):
        await repo.search("Patient", [("family:sounds-like", "x")])
    lenient = await repo.search("Patient", [("shoe-size", "9"), ("gender", "female")], strict=False)
    assert {r.res_id for r in lenient.matches} == {ics["zoe"]}
    assert ("shoe-size", "9") not in lenient.params and ("gender", "female") in lenient.params


# -- sort, paging, totals ----------------------------------------------------------------------------------------


async def test_sort_by_date_descending(repo: SqlFhirRepository, ics: dict[str, str]) -> None:
    result = await repo.search("Encounter", [("patient", ics["zoe"]), ("_sort", "-date")])
    assert [r.res_id for r in result.matches] == [ics["enc 2024-04-20"], ics["enc 2024-03-05"], ics["enc 2024-03-01"]]
    ascending = await repo.search("Encounter", [("patient", ics["zoe"]), ("_sort", "date")])
    assert [r.res_id for r in ascending.matches] == [r.res_id for r in reversed(result.matches)]


async def test_sort_by_last_updated(repo: SqlFhirRepository, ics: dict[str, str]) -> None:
    result = await repo.search("Encounter", [("_sort", "-_lastUpdated")])
    stamps = [r.last_updated for r in result.matches]
    assert stamps == sorted(stamps, reverse=True) and len(stamps) == 3


async def test_paging_covers_everything_once(repo: SqlFhirRepository, ics: dict[str, str]) -> None:
    seen: list[str] = []
    offset = 0
    while True:
        page = await repo.search("Encounter", [("_count", "2"), ("_offset", str(offset)), ("_sort", "date")])
        seen += [r.res_id for r in page.matches]
        assert page.total == 3
        if not page.has_next:
            break
        offset += 2
    assert seen == [ics["enc 2024-03-01"], ics["enc 2024-03-05"], ics["enc 2024-04-20"]]


async def test_summary_count(repo: SqlFhirRepository, ics: dict[str, str]) -> None:
    result = await repo.search("CareTeam", [("status", "active"), ("_summary", "count")])
    assert result.total == 2 and result.matches == []


async def test_deleted_resources_are_not_found(repo: SqlFhirRepository, ics: dict[str, str]) -> None:
    await repo.delete("CareTeam", ics["team"])
    assert await ids(repo, "CareTeam", ("patient", ics["zoe"]), ("status", "active")) == set()


async def test_updates_reindex(repo: SqlFhirRepository, ics: dict[str, str]) -> None:
    current = orjson.loads((await repo.read(EOC, ics["active"])).content or b"")
    await repo.update(EOC, ics["active"], {**current, "status": "finished"})
    assert await ids(repo, EOC, ("patient", ics["zoe"]), ("status", "active")) == set()
    assert await ids(repo, EOC, ("status", "finished"), ("patient", ics["zoe"])) == {ics["active"], ics["finished"]}


# -- include / revinclude ----------------------------------------------------------------------------------------


async def test_include_care_manager(repo: SqlFhirRepository, ics: dict[str, str]) -> None:
    result = await repo.search(
        EOC,
        [("patient", ics["zoe"]), ("status", "active"), ("_include", "EpisodeOfCare:care-manager")],
    )
    assert [r.res_id for r in result.matches] == [ics["active"]]
    assert [(r.res_type, r.res_id) for r in result.includes] == [("Practitioner", ics["kw1"])]


async def test_revinclude_and_iterate(repo: SqlFhirRepository, ics: dict[str, str]) -> None:
    result = await repo.search(
        EOC,
        [
            ("_id", ics["active"]),
            ("_revinclude", "Encounter:episode-of-care"),
            ("_include:iterate", "Encounter:subject"),
        ],
    )
    included = {(r.res_type, r.res_id) for r in result.includes}
    encounters = {("Encounter", v) for k, v in ics.items() if k.startswith("enc")}
    assert included == encounters | {("Patient", ics["zoe"])}


async def test_include_must_name_a_reference_parameter(repo: SqlFhirRepository, ics: dict[str, str]) -> None:
    with pytest.raises(InvalidSearch):
        await repo.search(EOC, [("_include", "EpisodeOfCare:status")])
    with pytest.raises(InvalidSearch):
        await repo.search(EOC, [("_include", "Encounter:subject")])


# -- properties: the SQL agrees with a plain-Python reading of the specification -----------------------------------

_DAYS = st.dates(min_value=__import__("datetime").date(2020, 1, 1), max_value=__import__("datetime").date(2021, 12, 31))
_PREFIXES = st.sampled_from(["eq", "ne", "lt", "gt", "le", "ge", "sa", "eb"])


def _oracle(prefix: str, lo: int, hi: int, s_lo: int, s_hi: int) -> bool:
    return {
        "eq": lo >= s_lo and hi <= s_hi,
        "ne": not (lo >= s_lo and hi <= s_hi),
        "gt": hi > s_hi,
        "lt": lo < s_lo,
        "ge": hi >= s_lo,
        "le": lo <= s_hi,
        "sa": lo > s_hi,
        "eb": hi < s_lo,
    }[prefix]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    periods=st.lists(st.tuples(_DAYS, st.integers(0, 40)), min_size=1, max_size=6),
    prefix=_PREFIXES,
    probe=_DAYS,
    precision=st.sampled_from(["year", "month", "day"]),
)
async def test_date_search_agrees_with_the_specification(
    repo: SqlFhirRepository, periods: list[tuple[Any, int]], prefix: str, probe: Any, precision: str
) -> None:
    import datetime as dt
    import uuid

    tag = uuid.uuid4().hex
    expected = set()
    async with repo.transaction() as tx:
        for start, length in periods:
            end = start + dt.timedelta(days=length)
            rid = await make(
                tx,
                {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {"code": "HH"},
                    "identifier": [{"system": "urn:test", "value": tag}],
                    "period": {"start": start.isoformat(), "end": end.isoformat()},
                },
            )
            lo, hi = date_range(start.isoformat())[0], date_range(end.isoformat())[1]
            text = {"year": probe.isoformat()[:4], "month": probe.isoformat()[:7], "day": probe.isoformat()}[precision]
            s_lo, s_hi = date_range(text)
            if _oracle(prefix, lo, hi, s_lo, s_hi):
                expected.add(rid)
        found = await ids(tx, "Encounter", ("identifier", f"urn:test|{tag}"), ("date", prefix + text), ("_count", "50"))
        assert found == expected


_NAME = st.text(st.characters(whitelist_categories=("Lu", "Ll"), max_codepoint=0x17F), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(family=_NAME, cut=st.integers(1, 12))
async def test_any_prefix_of_a_name_finds_it(repo: SqlFhirRepository, family: str, cut: int) -> None:
    import uuid

    tag = uuid.uuid4().hex
    async with repo.transaction() as tx:
        rid = await make(
            tx,
            {
                "resourceType": "Patient",
                "identifier": [{"system": "urn:test", "value": tag}],
                "name": [{"family": family}],
            },
        )
        prefix = family[:cut]
        if not normalise(prefix):
            return
        shouted = prefix.upper()
        found = await ids(tx, "Patient", ("identifier", f"urn:test|{tag}"), ("family", shouted))
        # Matching is on the normalised form (case folded, accents removed), by prefix.
        assert (found == {rid}) == normalise(family).startswith(normalise(shouted))
        assert normalise(shouted) != normalise(prefix) or found == {rid}
        exact = await ids(tx, "Patient", ("identifier", f"urn:test|{tag}"), ("family:exact", family))
        assert exact == {rid}
