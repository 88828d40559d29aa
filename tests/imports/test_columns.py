"""Column mapping: the default header variants, the mapping file, and errors that say what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.imports.columns import (
    DEFAULT_HEADERS,
    REQUIRED,
    ColumnMappingError,
    Item,
    header_key,
    load_mapping,
    parse_mapping,
    resolve_columns,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "register"
REQUIRED_HEADERS = ["NHS No", "Surname", "DOB", "RAG", "Reason", "Rated by", "Next review", "Date added"]


@pytest.mark.parametrize(
    ("header", "item"),
    [
        ("NHS No", Item.NHS_NUMBER),
        ("NHS No.", Item.NHS_NUMBER),
        ("nhs number", Item.NHS_NUMBER),
        ("  NHS_Number ", Item.NHS_NUMBER),
        ("DOB", Item.BIRTH_DATE),
        ("D.O.B.", Item.BIRTH_DATE),
        ("Date of Birth", Item.BIRTH_DATE),
        ("RAG", Item.RATING),
        ("RAG rating", Item.RATING),
        ("Rating", Item.RATING),
        ("Postcode", Item.POSTCODE),
        ("Post Code", Item.POSTCODE),
        ("GP Practice Code", Item.GP_PRACTICE),
        ("Consent", Item.CONSENT),
        ("Date Added", Item.DATE_ADDED),
        ("Next Review", Item.NEXT_REVIEW),
        ("Reason", Item.REASON),
        ("Rated By", Item.RATED_BY),
        ("Status", Item.STATUS),
        ("Forename", Item.GIVEN_NAME),
        ("SURNAME", Item.FAMILY_NAME),
    ],
)
def test_common_header_variants_are_recognised(header: str, item: Item) -> None:
    headers = [h for h in REQUIRED_HEADERS if header_key(h) not in {header_key(n) for n in DEFAULT_HEADERS[item]}]
    columns = resolve_columns([*headers, header])
    assert columns.header(item) == header


def test_the_header_is_kept_as_written_and_cells_are_trimmed() -> None:
    columns = resolve_columns(REQUIRED_HEADERS)
    assert columns.header(Item.NHS_NUMBER) == "NHS No"
    assert columns.cell({"NHS No": "  999 001 1133 "}, Item.NHS_NUMBER) == "999 001 1133"
    assert columns.header(Item.POSTCODE) is None
    assert columns.cell({"NHS No": "1"}, Item.POSTCODE) == ""


def test_a_missing_required_column_names_it_and_the_headers_seen() -> None:
    headers = [h for h in REQUIRED_HEADERS if h != "DOB"]
    with pytest.raises(ColumnMappingError) as caught:
        resolve_columns(headers)
    assert caught.value.problems == (
        "birth_date: no column (expected one of DOB, Date of birth, Birth date, Birthdate)",
    )
    assert "'NHS No', 'Surname', 'RAG'" in str(caught.value)


def test_every_missing_required_column_is_listed() -> None:
    with pytest.raises(ColumnMappingError) as caught:
        resolve_columns(["Something", "Else"])
    assert {p.split(":")[0] for p in caught.value.problems} == {i.value for i in REQUIRED}


def test_the_mapping_file_overrides_the_defaults() -> None:
    overrides = load_mapping(FIXTURES / "mapping.toml")
    headers = [
        "Patient NHS No.",
        "Child's first name",
        "Child's surname",
        "Birth (dd/mm/yyyy)",
        "Current RAG",
        "Why",
        "Who rated",
    ]
    columns = resolve_columns([*headers, "Review on", "On DSR since", "NHS No"], overrides)
    assert columns.header(Item.NHS_NUMBER) == "Patient NHS No."  # the mapping wins over the default "NHS No"
    assert columns.header(Item.NEXT_REVIEW) == "Review on"  # the second of two names given
    assert columns.header(Item.DATE_ADDED) == "On DSR since"


def test_a_mapping_naming_a_header_the_file_lacks_is_an_error_not_a_fallback() -> None:
    with pytest.raises(ColumnMappingError, match="nhs_number: the mapping names 'Patient NHS'"):
        resolve_columns(REQUIRED_HEADERS, {Item.NHS_NUMBER: ("Patient NHS",)})


def test_two_items_reading_one_column_is_an_error() -> None:
    with pytest.raises(ColumnMappingError, match="both read the column 'Reason'"):
        resolve_columns(REQUIRED_HEADERS, {Item.RATED_BY: ("Reason",)})


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"columns": {"nhs": "NHS"}}, "unknown item 'nhs'"),
        ({"columns": {"nhs_number": 3}}, "nhs_number must be a header name or a list of header names"),
        ({"columns": {"nhs_number": []}}, "nhs_number must be a header name"),
        ({"colums": {}}, "unknown table [colums]"),
        ({"columns": "NHS"}, "[columns] must be a table"),
    ],
)
def test_a_wrong_mapping_says_what_is_wrong(data: dict[str, object], problem: str) -> None:
    with pytest.raises(ColumnMappingError) as caught:
        parse_mapping(data)
    assert any(problem in p for p in caught.value.problems)


def test_a_mapping_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text("[columns\nnhs_number = 1", encoding="utf-8")
    with pytest.raises(ColumnMappingError, match="is not valid TOML"):
        load_mapping(path)
    with pytest.raises(ColumnMappingError, match="cannot be read"):
        load_mapping(tmp_path / "absent.toml")


def test_every_item_and_default_header_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "register-import.md").read_text(encoding="utf-8")
    for item, headers in DEFAULT_HEADERS.items():
        line = next((line for line in doc.splitlines() if line.startswith(f"| `{item.value}` |")), None)
        assert line is not None, f"docs/register-import.md has no row for {item.value}"
        assert ("| yes |" in line) == (item in REQUIRED), item
        assert ", ".join(headers) in line, item
