"""The import through the domain service, on SQLite and PostgreSQL (``repo`` is rolled back after each test)."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.domain.service import KeyworkingRecords
from gateway.errors import Issue
from gateway.imports.columns import resolve_columns
from gateway.imports.register_file import RawRow, RegisterSheet, read_csv, read_register_file
from gateway.imports.register_import import ImportReport, Outcome, import_register, report_lines
from gateway.imports.register_rows import entry_id_for, person_id_for
from gateway.origins import file_source, import_origin
from gateway.register.apply import RegisterRules
from gateway.store.repository import SqlFhirRepository
from mappings.identifiers import NHS_NUMBER_SYSTEM
from mappings.keyworking.records import Person, PersonName, RegisterEntry, Sex
from mappings.keyworking.terminology import DsrRating

FIXTURES = Path(__file__).parents[1] / "fixtures" / "register"
TODAY = date(2025, 7, 1)
IMPORTED_AT = datetime(2025, 7, 1, 9, 30, tzinfo=UTC)
NHS = "9990011133"


def service_over(repo: SqlFhirRepository) -> KeyworkingRecords:
    return KeyworkingRecords(repo, today=lambda: TODAY, after_write=RegisterRules())


#: The importing client and its file, as ``kwg import register`` names them.
ORIGIN = import_origin(
    "kwg import register",
    (file_source("register.csv", (FIXTURES / "register.csv").read_bytes(), what="register file"),),
    organisation="QX9",
)


async def run(repo: SqlFhirRepository, sheet: RegisterSheet, **options: object) -> ImportReport:
    columns = resolve_columns(sheet.headers)
    return await import_register(
        service_over(repo),
        sheet,
        columns,
        origin=ORIGIN,
        now=lambda: IMPORTED_AT,
        **options,  # type: ignore[arg-type]
    )


async def versions(repo: SqlFhirRepository) -> int:
    """Every resource version the store holds (system history): a write of any kind adds one."""
    return (await repo.history(None, None)).total


def with_cells(sheet: RegisterSheet, number: int, **changes: str) -> RegisterSheet:
    rows = tuple(RawRow(r.number, r.cells | changes) if r.number == number else r for r in sheet.rows)
    return RegisterSheet(sheet.headers, rows)


REGISTER = read_register_file(FIXTURES / "register.csv")


async def test_an_import_creates_people_and_register_entries(repo: SqlFhirRepository) -> None:
    seen: list[tuple[int, int]] = []
    report = await run(repo, REGISTER, register_ods="QX9", progress=lambda done, total: seen.append((done, total)))
    assert (report.created, report.updated, report.unchanged, report.refused) == (3, 0, 0, 0)
    assert [r.outcome for r in report.rows] == [Outcome.CREATED] * 3
    assert seen == [(1, 3), (2, 3), (3, 3)]
    service = service_over(repo)
    (person,) = await service.people_by_identifier(NHS_NUMBER_SYSTEM, NHS)
    assert person.id == person_id_for(NHS) and person.postcode == "LS1 4AP"
    entry = await service.get(RegisterEntry, entry_id_for(NHS))
    assert entry.person_id == person.id
    assert entry.current_rating is not None and entry.current_rating.rating is DsrRating.RED
    assert entry.managing_organisation is not None and entry.managing_organisation.ods_code == "QX9"


async def test_a_dry_run_writes_nothing_and_reports_what_would_happen(repo: SqlFhirRepository) -> None:
    before = await versions(repo)
    report = await run(repo, REGISTER, dry_run=True)
    assert report.dry_run and (report.created, report.refused) == (3, 0)
    assert report.summary() == "3 rows: 3 would be created, 0 would be updated, 0 unchanged, 0 refused"
    assert await versions(repo) == before
    assert await service_over(repo).people_by_identifier(NHS_NUMBER_SYSTEM, NHS) == []


async def test_a_dry_run_after_an_import_reports_updates_without_writing(repo: SqlFhirRepository) -> None:
    await run(repo, REGISTER)
    before = await versions(repo)
    changed = with_cells(REGISTER, 2, **{"RAG rating": "Amber", "Next review": "01/08/2025"})
    report = await run(repo, changed, dry_run=True)
    assert [r.outcome for r in report.rows] == [Outcome.UPDATED, Outcome.UNCHANGED, Outcome.UNCHANGED]
    assert await versions(repo) == before


async def test_importing_the_same_file_again_changes_nothing(repo: SqlFhirRepository) -> None:
    await run(repo, REGISTER, register_ods="QX9")
    before = await versions(repo)
    report = await run(repo, REGISTER, register_ods="QX9")
    assert (report.created, report.updated, report.unchanged, report.refused) == (0, 0, 3, 0)
    assert await versions(repo) == before


async def test_a_new_rating_appends_to_the_history(repo: SqlFhirRepository) -> None:
    await run(repo, REGISTER)
    service = service_over(repo)
    first = await service.get(RegisterEntry, entry_id_for(NHS))
    changed = with_cells(REGISTER, 2, **{"RAG rating": "a", "Reason": "Calmer", "Next review": "01/08/2025"})
    report = await run(repo, changed)
    assert [r.outcome for r in report.rows] == [Outcome.UPDATED, Outcome.UNCHANGED, Outcome.UNCHANGED]
    entry = await service.get(RegisterEntry, entry_id_for(NHS))
    assert entry.ratings[0] == first.ratings[0]
    assert [(r.rating, r.at) for r in entry.ratings] == [
        (DsrRating.RED, datetime(2025, 6, 2, tzinfo=UTC)),
        (DsrRating.AMBER, IMPORTED_AT),
    ]
    before = await versions(repo)
    again = await run(repo, changed)  # the same changed file: the rating is already amber
    assert again.unchanged == 3 and await versions(repo) == before
    assert len((await service.get(RegisterEntry, entry_id_for(NHS))).ratings) == 2


async def test_a_person_already_in_the_gateway_keeps_their_id(repo: SqlFhirRepository) -> None:
    service = service_over(repo)
    existing = Person(
        nhs_number=NHS,
        name=PersonName(given=("Ada",), family="Testperson"),
        birth_date=date(2012, 3, 14),
        sex=Sex.FEMALE,
    )
    saved = await service.create(existing, record_id="made-by-the-api")
    report = await run(repo, REGISTER)
    assert report.rows[0].outcome is Outcome.CREATED  # the entry is new; the person is updated, not duplicated
    (person,) = await service.people_by_identifier(NHS_NUMBER_SYSTEM, NHS)
    assert person.id == saved.record.id == "made-by-the-api"
    assert person.postcode == "LS1 4AP"
    assert (await service.get(RegisterEntry, entry_id_for(NHS))).person_id == "made-by-the-api"


async def test_bad_rows_are_reported_and_the_good_rows_imported(repo: SqlFhirRepository) -> None:
    report = await run(repo, read_register_file(FIXTURES / "register-errors.csv"))
    assert [(r.row, r.outcome) for r in report.rows] == [
        (2, Outcome.REFUSED),
        (3, Outcome.REFUSED),
        (4, Outcome.REFUSED),
        (5, Outcome.CREATED),
    ]
    assert [(r.errors[0].column, r.errors[0].message.split(":")[0]) for r in report.rows[:3]] == [
        ("NHS Number", "nhs_number"),
        ("RAG", "rating"),
        ("Date of birth", "birth_date"),
    ]
    assert report.rows[0].masked_nhs_number == "999 *** **14"
    assert await service_over(repo).people_by_identifier(NHS_NUMBER_SYSTEM, "9990084432")


async def test_a_row_the_gateway_refuses_does_not_stop_the_others(repo: SqlFhirRepository) -> None:
    # Row 2 is too old for keyworking: the check happens against the store (a new person), after validation.
    sheet = with_cells(REGISTER, 2, DOB="01/01/1990")
    report = await run(repo, sheet)
    assert [r.outcome for r in report.rows] == [Outcome.REFUSED, Outcome.CREATED, Outcome.CREATED]
    assert report.rows[0].errors[0].message.startswith("birth_date: gives age 35")
    assert await service_over(repo).people_by_identifier(NHS_NUMBER_SYSTEM, NHS) == []


async def test_a_rule_refusal_at_write_time_rolls_back_only_that_row(repo: SqlFhirRepository) -> None:
    # The register rules hold a person red for two weeks after discharge from blue: green straight away is refused.
    await run(repo, with_cells(REGISTER, 2, **{"RAG rating": "Blue"}))
    await run(repo, with_cells(REGISTER, 2, **{"RAG rating": "Red", "Next review": "01/08/2025"}))  # discharged
    before = await versions(repo)
    sheet = with_cells(REGISTER, 2, **{"RAG rating": "Green", "Next review": "01/08/2025"})
    sheet = with_cells(sheet, 3, Postcode="M1 1AE")
    report = await run(repo, sheet)
    assert [r.outcome for r in report.rows] == [Outcome.REFUSED, Outcome.UPDATED, Outcome.UNCHANGED]
    assert report.rows[0].errors[0].column is None
    assert report.rows[0].errors[0].message.startswith("after discharge the rating stays at least red until")
    entry = await service_over(repo).get(RegisterEntry, entry_id_for(NHS))
    assert [r.rating for r in entry.ratings] == [DsrRating.BLUE, DsrRating.RED]
    assert await versions(repo) > before  # row 3 was written


async def test_an_nhs_number_on_two_rows_refuses_both(repo: SqlFhirRepository) -> None:
    sheet = read_csv((FIXTURES / "register.csv").read_bytes().replace(b"9990011710", b"9990011133"))
    report = await run(repo, sheet)
    assert [r.outcome for r in report.rows] == [Outcome.REFUSED, Outcome.REFUSED, Outcome.CREATED]
    assert report.rows[0].errors[0].message == "nhs_number: the same NHS number is on row 3; keep one row"


async def test_the_report_never_holds_nhs_numbers_or_names(repo: SqlFhirRepository) -> None:
    report = await run(repo, read_register_file(FIXTURES / "register-errors.csv"))
    text = repr(report_lines(report)) + repr(report)
    for secret in ("9990115014", "9990054630", "9990073678", "9990084432", "Dee", "Badnumber", "Goodrow"):
        assert secret not in text


@pytest.mark.parametrize("name", ["register-semicolon-cp1252.csv"])
async def test_windows_1252_semicolon_files_import(repo: SqlFhirRepository, name: str) -> None:
    report = await run(repo, read_register_file(FIXTURES / name))
    assert report.created == 2 and report.refused == 0
    (person,) = await service_over(repo).people_by_identifier(NHS_NUMBER_SYSTEM, "9990040060")
    assert person.name.given == ("Éric",) and person.birth_date == date(2023, 3, 15)


async def test_two_people_with_the_row_nhs_number_refuse_the_row(repo: SqlFhirRepository) -> None:
    service = service_over(repo)
    someone = Person(nhs_number=NHS, name=PersonName(family="Testperson"), birth_date=date(2012, 3, 14), sex=Sex.FEMALE)
    await service.create(someone, record_id="first-copy")
    await service.create(someone, record_id="second-copy")
    report = await run(repo, REGISTER)
    assert report.rows[0].outcome is Outcome.REFUSED
    assert report.rows[0].errors[0].message.startswith("the gateway holds 2 people with this NHS number")
    assert [r.outcome for r in report.rows[1:]] == [Outcome.CREATED, Outcome.CREATED]


async def test_a_profile_refusal_reports_where_not_what(repo: SqlFhirRepository) -> None:
    def refuse_people(resource: dict[str, Any]) -> list[Issue]:
        if resource["resourceType"] != "Patient":
            return []
        return [Issue("invalid", f"{resource['name'][0]['family']} is not allowed", ("Patient.name[0].family",))]

    strict = SqlFhirRepository(repo.engine, validator=refuse_people, conn=repo.bound_connection)
    report = await run(strict, REGISTER)
    assert [r.outcome for r in report.rows] == [Outcome.REFUSED] * 3
    (error,) = report.rows[0].errors
    assert error.message == "Patient failed validation: 1 issue(s) at Patient.name[0].family"
    assert await service_over(repo).people_by_identifier(NHS_NUMBER_SYSTEM, NHS) == []


async def test_each_imported_record_names_the_importing_client_and_the_file(repo: SqlFhirRepository) -> None:
    await run(repo, REGISTER, register_ods="QX9")
    digest = hashlib.sha256((FIXTURES / "register.csv").read_bytes()).hexdigest()
    person, entry = person_id_for(NHS), entry_id_for(NHS)
    for target in (f"Patient/{person}", f"EpisodeOfCare/{entry}"):
        [provenance] = [
            orjson.loads(r.content or b"{}") for r in (await repo.search("Provenance", [("target", target)])).matches
        ]
        [agent] = provenance["agent"]
        assert agent["who"]["identifier"]["value"] == "kwg import register"
        assert agent["onBehalfOf"]["identifier"]["value"] == "QX9"
        [entity] = provenance["entity"]
        assert entity["role"] == "source" and entity["what"]["identifier"]["value"] == digest
        assert entity["what"]["display"] == "register file register.csv"
        res_type, res_id = target.split("/")
        assert f"{target}/_history/{(await repo.read(res_type, res_id)).version_id}" in {
            t["reference"] for t in provenance["target"]
        }
    # A row updated by a later file: a second Provenance, for that write only.
    changed = with_cells(REGISTER, 2, **{"RAG rating": "Amber", "Next review": "01/08/2025"})
    await run(repo, changed)
    updates = (await repo.search("Provenance", [("target", f"EpisodeOfCare/{entry}")])).matches
    assert len(updates) == 2
    assert len((await repo.search("Provenance", [("target", f"Patient/{person}")])).matches) == 1
