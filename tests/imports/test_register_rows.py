"""One row → Person and RegisterEntry, or errors naming the row, the column and the field; reconciling re-imports."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.imports.columns import ColumnMap, Item, resolve_columns
from gateway.imports.register_rows import (
    CONSENT_BY_NOT_RECORDED,
    Change,
    RowRefused,
    entry_id_for,
    format_uk_date,
    mask_nhs_number,
    parse_date,
    parse_rating,
    person_id_for,
    read_row,
    reconcile,
)
from mappings.keyworking.records import ConsentBasis, ConsentStatus, Diagnosed, Sex
from mappings.keyworking.terminology import Diagnosis, DsrRating, RegisterStatus

HEADERS = [
    "NHS No",
    "Forename",
    "Surname",
    "DOB",
    "Sex",
    "Postcode",
    "GP practice code",
    "RAG",
    "Reason",
    "Rated by",
    "Next review",
    "Date added",
    "Status",
    "Consent",
]
COLUMNS = resolve_columns(HEADERS)
NHS = "9990011133"
IMPORTED_AT = datetime(2025, 7, 1, 9, 30, tzinfo=UTC)
TODAY = date(2025, 7, 1)


def cells(**changes: str) -> dict[str, str]:
    row = {
        "NHS No": "999 001 1133",
        "Forename": "Ada Jane",
        "Surname": "Testperson",
        "DOB": "14/03/2012",
        "Sex": "F",
        "Postcode": "ls1 4ap",
        "GP practice code": "b86001",
        "RAG": "Red",
        "Reason": "Family in crisis",
        "Rated by": "Dr Synthetic Lead",
        "Next review": "30/06/2025",
        "Date added": "02/06/2025",
        "Status": "",
        "Consent": "Yes",
    }
    return row | changes


def refused(**changes: str) -> RowRefused:
    with pytest.raises(RowRefused) as caught:
        read_row(7, cells(**changes), COLUMNS)
    return caught.value


# -- reading --------------------------------------------------------------------------------------------------------


def test_a_good_row_gives_a_person_and_a_register_entry_with_derived_ids() -> None:
    row = read_row(2, cells(), COLUMNS, register_ods="qx9")
    person, entry = row.person, row.entry
    assert person.id == person_id_for(NHS) and entry.id == entry_id_for(NHS) and entry.person_id == person.id
    assert person.nhs_number == NHS
    assert (person.name.given, person.name.family) == (("Ada", "Jane"), "Testperson")
    assert (person.birth_date, person.sex, person.postcode, person.gp_practice) == (
        date(2012, 3, 14),
        Sex.FEMALE,
        "LS1 4AP",
        "B86001",
    )
    assert entry.status is RegisterStatus.ON_REGISTER
    assert entry.referred_on == date(2025, 6, 2)
    assert entry.managing_organisation is not None and entry.managing_organisation.ods_code == "QX9"
    assert entry.consent is not None
    assert (entry.consent.basis, entry.consent.status) == (ConsentBasis.CONSENT, ConsentStatus.GIVEN)
    assert entry.consent.decided_by.name == CONSENT_BY_NOT_RECORDED
    (rating,) = entry.ratings
    assert (rating.rating, rating.reason, rating.author.name) == (
        DsrRating.RED,
        "Family in crisis",
        "Dr Synthetic Lead",
    )
    assert rating.at == datetime(2025, 6, 2, tzinfo=UTC)  # no rating-date column: dated when added
    assert rating.next_review == date(2025, 6, 30)


def test_ids_do_not_depend_on_how_the_nhs_number_is_written() -> None:
    assert read_row(2, cells(**{"NHS No": "999-001-1133"}), COLUMNS).person.id == person_id_for(NHS)
    assert person_id_for(NHS) != entry_id_for(NHS) != person_id_for("9990011710")


@pytest.mark.parametrize(
    ("text", "rating"),
    [("Blue", DsrRating.BLUE), ("RED", DsrRating.RED), ("amber", DsrRating.AMBER), (" Green ", DsrRating.GREEN)]
    + [("B", DsrRating.BLUE), ("r", DsrRating.RED), ("a", DsrRating.AMBER), ("G", DsrRating.GREEN)],
)
def test_ratings_by_word_or_letter_in_any_case(text: str, rating: DsrRating) -> None:
    assert parse_rating(text) is rating
    assert read_row(2, cells(RAG=text), COLUMNS).entry.ratings[0].rating is rating


def test_an_empty_rating_gives_an_unrated_entry() -> None:
    row = read_row(2, cells(RAG="", Reason="", **{"Rated by": "", "Next review": ""}), COLUMNS)
    assert row.entry.ratings == ()


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("14/03/2012", date(2012, 3, 14)),
        ("4/3/2012", date(2012, 3, 4)),
        ("14-03-2012", date(2012, 3, 14)),
        ("14.03.2012", date(2012, 3, 14)),
        ("2012-03-14", date(2012, 3, 14)),
        ("2012-03-14 00:00:00", date(2012, 3, 14)),
        ("2012-03-14T10:15", date(2012, 3, 14)),
        ("45000", date(2023, 3, 15)),  # an Excel serial date
        ("45000.0", date(2023, 3, 15)),
        ("61", date(1900, 3, 1)),
        ("", None),
    ],
)
def test_dates_in_uk_order_iso_or_excel_serials(text: str, day: date | None) -> None:
    assert parse_date(text) == day


@pytest.mark.parametrize("text", ["31/02/2012", "12/13/2012", "14/03/12", "2012/03/14", "March 2012", "60", "0", "x"])
def test_other_dates_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_date(text)


def test_a_bad_nhs_number_names_the_row_the_column_and_the_field() -> None:
    (error,) = refused(**{"NHS No": "999 011 5014"}).errors
    assert (error.row, error.column) == (7, "NHS No")
    assert error.message.startswith("nhs_number: is not a valid NHS number")
    assert "9990115014" not in error.message and "011 5014" not in error.message


def test_an_unknown_rating_names_the_column() -> None:
    (error,) = refused(RAG="Purple").errors
    assert (error.row, error.column) == (7, "RAG")
    assert error.message == "rating: is not a RAG rating (write Blue, Red, Amber or Green, or B, R, A, G)"
    assert "Purple" not in error.message


@pytest.mark.parametrize(("header", "field"), [("DOB", "birth_date"), ("Date added", "date_added")])
def test_a_bad_date_names_the_column(header: str, field: str) -> None:
    (error,) = refused(**{header: "31/02/2012"}).errors
    assert (error.column, error.message) == (header, f"{field}: is not a real date")


def test_every_problem_in_a_row_is_reported_once() -> None:
    errors = refused(**{"NHS No": "123", "DOB": "soon", "RAG": "Purple", "Postcode": "nowhere"}).errors
    assert [e.column for e in errors] == ["DOB", "RAG", "NHS No", "Postcode"]


@pytest.mark.parametrize(
    ("changes", "column", "message"),
    [
        ({"Surname": ""}, "Surname", "name.family: String should have at least 1 character"),
        ({"Reason": ""}, "Reason", "ratings.0.reason: String should have at least 1 character"),
        ({"Rated by": ""}, "Rated by", "ratings.0.author.name: String should have at least 1 character"),
        ({"Next review": ""}, "Next review", "next_review: is required with a rating"),
        ({"Next review": "01/01/2025"}, "Next review", "ratings.0.next_review: is before the decision it follows"),
        ({"Sex": "x"}, "Sex", "sex: is not a sex (write Male, Female, Other or Unknown)"),
        ({"GP practice code": "B8"}, "GP practice code", "gp_practice: String should match pattern"),
        ({"Status": "Closed"}, "ended_on", "ended_on: is required when the entry is closed"),
        ({"Status": "limbo"}, "Status", "status: is not a register status"),
        ({"Consent": "maybe"}, "Consent", "consent: is not a consent answer"),
        ({"Date added": ""}, "Date added", "referred_on: is required"),
    ],
)
def test_field_errors_come_from_the_records_and_name_the_field(
    changes: dict[str, str], column: str, message: str
) -> None:
    errors = refused(**changes).errors
    assert [e.column for e in errors] == [column]  # "ended_on": the file has no column for it
    assert errors[0].message.startswith(message)


def test_a_column_the_file_lacks_is_named_by_its_item() -> None:
    columns = ColumnMap({k: v for k, v in COLUMNS.headers.items() if k is not Item.ENDED_ON})
    with pytest.raises(RowRefused) as caught:
        read_row(3, cells(Status="Closed"), columns)
    assert caught.value.errors[0].column == "ended_on"


def test_masked_nhs_numbers_show_the_first_three_and_last_two_digits() -> None:
    assert mask_nhs_number("999 001 1133") == "999 *** **33"
    assert mask_nhs_number("12") == "*** *** ****"


# -- reconciling with what the gateway holds ------------------------------------------------------------------------


def test_a_new_row_creates_both() -> None:
    planned = reconcile(
        read_row(2, cells(), COLUMNS), stored_person=None, stored_entry=None, imported_at=IMPORTED_AT, today=TODAY
    )
    assert (planned.person_change, planned.entry_change, planned.change) == (Change.CREATED,) * 3


def test_the_same_row_again_changes_nothing() -> None:
    row = read_row(2, cells(), COLUMNS)
    planned = reconcile(row, stored_person=row.person, stored_entry=row.entry, imported_at=IMPORTED_AT, today=TODAY)
    assert planned.change is Change.UNCHANGED
    assert planned.entry.ratings == row.entry.ratings


def test_a_different_rating_is_appended_and_history_is_kept() -> None:
    first = read_row(2, cells(), COLUMNS)
    again = read_row(2, cells(RAG="A", Reason="Calmer at home", **{"Next review": "01/08/2025"}), COLUMNS)
    planned = reconcile(
        again, stored_person=first.person, stored_entry=first.entry, imported_at=IMPORTED_AT, today=TODAY
    )
    assert (planned.person_change, planned.entry_change) == (Change.UNCHANGED, Change.UPDATED)
    old, new = planned.entry.ratings
    assert old == first.entry.ratings[0]
    assert (new.rating, new.reason, new.at) == (DsrRating.AMBER, "Calmer at home", IMPORTED_AT)


def test_the_same_rating_with_another_reason_changes_nothing() -> None:
    first = read_row(2, cells(), COLUMNS)
    again = read_row(2, cells(RAG="r", Reason="Still in crisis"), COLUMNS)
    planned = reconcile(
        again, stored_person=first.person, stored_entry=first.entry, imported_at=IMPORTED_AT, today=TODAY
    )
    assert planned.change is Change.UNCHANGED


def test_a_stale_next_review_on_a_rating_change_is_refused_naming_the_column() -> None:
    first = read_row(2, cells(), COLUMNS)
    again = read_row(2, cells(RAG="A"), COLUMNS)  # next review 30/06/2025, before the change on 01/07/2025
    with pytest.raises(RowRefused) as caught:
        reconcile(again, stored_person=first.person, stored_entry=first.entry, imported_at=IMPORTED_AT, today=TODAY)
    (error,) = caught.value.errors
    assert (error.column, error.message) == ("Next review", "ratings.1.next_review: is before the decision it follows")


def test_an_existing_person_keeps_their_id_and_what_the_file_does_not_carry() -> None:
    row = read_row(2, cells(Postcode="", Sex=""), COLUMNS)
    stored = row.person.model_copy(
        update={
            "id": "from-the-api",
            "postcode": "M1 1AE",
            "sex": Sex.FEMALE,
            "diagnoses": (Diagnosed(diagnosis=Diagnosis.AUTISM),),
        }
    )
    planned = reconcile(row, stored_person=stored, stored_entry=None, imported_at=IMPORTED_AT, today=TODAY)
    assert planned.person == stored
    assert planned.person_change is Change.UNCHANGED
    assert planned.entry.person_id == "from-the-api"
    assert planned.entry_change is Change.CREATED


def test_a_new_person_must_be_of_keyworking_age() -> None:
    row = read_row(2, cells(DOB="01/01/1990"), COLUMNS)
    with pytest.raises(RowRefused) as caught:
        reconcile(row, stored_person=None, stored_entry=None, imported_at=IMPORTED_AT, today=TODAY)
    (error,) = caught.value.errors
    assert error.column == "DOB" and error.message.startswith("birth_date: gives age 35")


# -- properties -----------------------------------------------------------------------------------------------------


@given(st.dates())
def test_the_uk_date_parser_round_trips_any_date(day: date) -> None:
    assert parse_date(format_uk_date(day)) == day
    assert parse_date(day.isoformat()) == day


ROW_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "Red", "b", "14/03/2012", "2012-02-30", "45000", "999 001 1133", "Closed", "Yes", "F"]),
)


@settings(max_examples=300)
@given(
    st.one_of(
        st.fixed_dictionaries(dict.fromkeys(HEADERS, ROW_TEXT)),  # anything at all
        st.dictionaries(st.sampled_from(HEADERS), ROW_TEXT, max_size=4).map(lambda c: cells(**c)),  # a good row, hit
    )
)
def test_the_row_reader_raises_nothing_but_row_refused(row: dict[str, str]) -> None:
    try:
        result = read_row(2, row, COLUMNS)
    except RowRefused as exc:
        assert exc.errors and all(e.row == 2 for e in exc.errors)
    else:
        assert result.entry.person_id == result.person.id
        try:  # reconciling, with or without stored records, fails only the documented way too
            reconcile(result, stored_person=None, stored_entry=None, imported_at=IMPORTED_AT, today=TODAY)
            planned = reconcile(
                result, stored_person=result.person, stored_entry=result.entry, imported_at=IMPORTED_AT, today=TODAY
            )
        except RowRefused as exc:
            assert exc.errors
        else:
            assert planned.change is Change.UNCHANGED
