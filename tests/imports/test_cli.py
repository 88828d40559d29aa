"""``kwg import register`` through typer's CliRunner on the sub-app, over an embedded SQLite gateway."""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner, Result

from gateway.imports.cli import import_app
from gateway.settings import Settings
from gateway.store.migrate import upgrade

FIXTURES = Path(__file__).parents[1] / "fixtures" / "register"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KWG_HOME", str(tmp_path))
    upgrade(Settings(home=tmp_path))
    return tmp_path


def kwg_import(*args: str | Path) -> Result:
    return CliRunner().invoke(import_app, [str(a) for a in args])


def test_help_lists_the_register_command() -> None:
    result = kwg_import("--help")
    assert result.exit_code == 0 and "register" in result.output


def test_an_import_prints_the_summary_and_a_second_changes_nothing(home: Path) -> None:
    first = kwg_import("register", FIXTURES / "register.csv", "--register-ods", "qx9")
    assert first.exit_code == 0, first.output
    assert "3 rows: 3 created, 0 updated, 0 unchanged, 0 refused" in first.output
    second = kwg_import("register", FIXTURES / "register.csv", "--register-ods", "QX9")
    assert second.exit_code == 0
    assert "3 rows: 0 created, 0 updated, 3 unchanged, 0 refused" in second.output


def test_a_dry_run_writes_nothing(home: Path) -> None:
    dry = kwg_import("register", FIXTURES / "register.csv", "--dry-run")
    assert dry.exit_code == 0
    assert "dry run, nothing written: 3 rows: 3 would be created" in dry.output
    assert "3 created" in kwg_import("register", FIXTURES / "register.csv").output


def test_refused_rows_exit_1_and_the_report_names_rows_not_people(home: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.csv"
    result = kwg_import("register", FIXTURES / "register-errors.csv", "--report", report)
    assert result.exit_code == 1
    assert "row 2 (999 *** **14) [NHS Number]: nhs_number: is not a valid NHS number" in result.output
    assert "4 rows: 1 created, 0 updated, 0 unchanged, 3 refused" in result.output
    with report.open(encoding="utf-8", newline="") as f:
        lines = list(csv.DictReader(f))
    assert [(r["row"], r["outcome"], r["column"]) for r in lines] == [
        ("2", "refused", "NHS Number"),
        ("3", "refused", "RAG"),
        ("4", "refused", "Date of birth"),
        ("5", "created", ""),
    ]
    assert lines[3]["nhs_number"] == "999 *** **32"
    everything = result.output + report.read_text(encoding="utf-8")
    for secret in ("9990115014", "9990084432", "Badnumber", "Goodrow", "Dee"):
        assert secret not in everything


def test_a_missing_column_exits_2_naming_it_and_the_headers(home: Path) -> None:
    result = kwg_import("register", FIXTURES / "register-missing-column.csv")
    assert result.exit_code == 2
    assert "birth_date: no column (expected one of DOB, Date of birth" in result.output
    assert "headers seen: 'NHS Number', 'Forename', 'Surname', 'RAG'" in result.output


def test_a_mapping_file_explains_other_headers(home: Path) -> None:
    file = FIXTURES / "register-own-headers.csv"
    assert kwg_import("register", file).exit_code == 2
    result = kwg_import("register", file, "--mapping", FIXTURES / "mapping.toml")
    assert result.exit_code == 0, result.output
    assert "1 created" in result.output


def test_a_bad_register_ods_code_exits_2(home: Path) -> None:
    result = kwg_import("register", FIXTURES / "register.csv", "--register-ods", "Q!")
    assert result.exit_code == 2 and "--register-ods must be an ODS code" in result.output


def test_an_xlsx_register_imports(home: Path, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["NHS Number", "Forename", "Surname", "Date of birth", "RAG rating", "Reason", "Rated by"])
    sheet["H1"], sheet["I1"] = "Next review date", "Date added"
    sheet.append([9990091218, "Ivy", "Workbook", date(2013, 5, 5), "B", "Admitted", "Dr Synthetic Lead"])
    sheet["H2"], sheet["I2"] = date(2025, 7, 1), date(2025, 6, 1)
    path = tmp_path / "register.xlsx"
    book.save(path)
    result = kwg_import("register", path)
    assert result.exit_code == 0, result.output
    assert "1 row: 1 created" in result.output
    assert "1 unchanged" in kwg_import("register", path).output


def test_an_import_names_the_command_and_the_file_in_provenance(home: Path) -> None:
    assert kwg_import("register", FIXTURES / "register.csv", "--register-ods", "QX9").exit_code == 0
    digest = hashlib.sha256((FIXTURES / "register.csv").read_bytes()).hexdigest()
    with sqlite3.connect(home / "gateway.db") as db:
        rows = db.execute("SELECT content FROM resource WHERE res_type = 'Provenance'").fetchall()
    provenances = [json.loads(content) for (content,) in rows]
    assert len(provenances) == 6  # each of the three rows: its person and its register entry
    assert {p["entity"][0]["what"]["identifier"]["value"] for p in provenances} == {digest}
    assert {p["agent"][0]["onBehalfOf"]["identifier"]["value"] for p in provenances} == {"QX9"}


def test_a_context_file_that_is_not_utf8_is_refused_in_one_line(home: Path, tmp_path: Path) -> None:
    """Found while fuzzing the imports: a Windows-1252 SSDA903 file ended ``kwg import ssda903`` in a traceback."""
    header = tmp_path / "header.csv"
    header.write_bytes("CHILD,SEX,DOB\nLAC0001,1,01/01/2012 \xe9\n".encode("cp1252"))
    result = kwg_import("ssda903", header, header, "--la-number", "383")
    assert result.exit_code == 2 and "header.csv is not UTF-8 text" in result.output
