"""``kwg import register FILE``: load a Dynamic Support Register spreadsheet into the gateway.

Exit codes: 0 every row imported (or would be, with ``--dry-run``); 1 at least one row refused (the others are
imported); 2 nothing was read (the file, the mapping file or ``--register-ods`` is wrong). Output names rows by
number and masked NHS number only.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import TypeAdapter, ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from connectors.education.safe_xml import BadXml, UnsafeXml
from gateway.imports.columns import ColumnMap, ColumnMappingError, load_mapping, resolve_columns
from gateway.imports.register_file import RegisterFileError, RegisterSheet, read_register_file
from gateway.imports.register_import import ImportReport, import_register, write_report
from gateway.origins import LA_NUMBER_SYSTEM, file_source, import_origin
from gateway.settings import Settings, load_settings
from mappings.keyworking.records import OdsCode
from mappings.provenance import Origin

import_app = typer.Typer(help="Import records from the files partners keep.", no_args_is_help=True)


@import_app.callback()
def imports() -> None:
    """Import records from the files partners keep (a callback keeps ``register`` a subcommand)."""


#: How many refused rows the terminal lists before pointing at --report for the rest.
SHOWN_ERRORS = 20


@import_app.command("register")
def register(
    file: Annotated[Path, typer.Argument(help="The register spreadsheet (.csv or .xlsx)", exists=True, dir_okay=False)],
    mapping: Annotated[
        Path | None,
        typer.Option(help="TOML file naming the columns (see docs/register-import.md)", exists=True),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report; write nothing")] = False,
    report: Annotated[Path | None, typer.Option(help="Write the per-row report to this CSV file")] = None,
    register_ods: Annotated[
        str | None, typer.Option("--register-ods", help="ODS code of the ICB that holds the register (e.g. QX9)")
    ] = None,
) -> None:
    """Import a Dynamic Support Register spreadsheet: people and their register entries, ratings appended."""
    settings = load_settings()
    try:
        ods = TypeAdapter(OdsCode).validate_python(register_ods) if register_ods is not None else None
    except ValidationError:
        _stop("--register-ods must be an ODS code: 3 to 10 letters and digits (e.g. QX9)")
    try:
        sheet = read_register_file(file)
        columns = resolve_columns(sheet.headers, load_mapping(mapping) if mapping is not None else None)
        origin = import_origin(
            "kwg import register", (file_source(file.name, file.read_bytes(), what="register file"),), organisation=ods
        )
    except (RegisterFileError, ColumnMappingError) as exc:
        _stop(str(exc))
    except OSError as exc:
        _stop(f"{file.name} cannot be read ({exc.strerror})")
    outcome = asyncio.run(_run(settings, sheet, columns, ods, dry_run, origin))
    if report is not None:
        write_report(report, outcome)
    _print(outcome, report)
    raise typer.Exit(1 if outcome.refused else 0)


async def _run(
    settings: Settings, sheet: RegisterSheet, columns: ColumnMap, ods: str | None, dry_run: bool, origin: Origin
) -> ImportReport:
    from gateway.domain.service import KeyworkingRecords
    from gateway.register.apply import RegisterRules
    from gateway.register.config import DEFAULT_RULES, load_rules
    from gateway.store.db import create_engine
    from gateway.store.repository import SqlFhirRepository
    from gateway.validation import validate_resource

    rules = RegisterRules(load_rules(settings.rules_file) if settings.rules_file else DEFAULT_RULES)
    engine = create_engine(settings)
    try:
        service = KeyworkingRecords(SqlFhirRepository(engine, validator=validate_resource), after_write=rules)
        columns_shown = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns_shown, transient=True) as bar:
            task = bar.add_task("checking" if dry_run else "importing", total=len(sheet.rows))
            return await import_register(
                service,
                sheet,
                columns,
                origin=origin,
                register_ods=ods,
                dry_run=dry_run,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    finally:
        await engine.dispose()


def _print(outcome: ImportReport, report: Path | None) -> None:
    refused = [row for row in outcome.rows if row.errors]
    for row in refused[:SHOWN_ERRORS]:
        for error in row.errors:
            where = f" [{error.column}]" if error.column else ""
            typer.echo(f"row {row.row} ({row.masked_nhs_number}){where}: {error.message}", err=True)
    if len(refused) > SHOWN_ERRORS:
        more = f"; see {report}" if report is not None else "; use --report FILE to see them all"
        typer.echo(f"... and {len(refused) - SHOWN_ERRORS} more refused rows{more}", err=True)
    typer.echo(("dry run, nothing written: " if outcome.dry_run else "") + outcome.summary())


def _stop(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@import_app.command("ssda903")
def ssda903(
    header: Annotated[Path, typer.Argument(help="The Header file (CSV)", exists=True, dir_okay=False)],
    episodes: Annotated[Path, typer.Argument(help="The Episodes file (CSV)", exists=True, dir_okay=False)],
    la_number: Annotated[str, typer.Option("--la-number", help="The local authority's DfE number, e.g. 383")],
) -> None:
    """Looked-after children return (SSDA903): legal status and placements as context on known young people."""
    from gateway.imports.context import import_ssda903

    if not (len(la_number) == 3 and la_number.isdigit()):
        _stop("--la-number must be the three-digit DfE local authority number (e.g. 383)")
    data = (header.read_bytes(), episodes.read_bytes())
    texts = (_utf8(header.name, data[0]), _utf8(episodes.name, data[1]))
    sources = (
        file_source(header.name, data[0], what="SSDA903 Header file"),
        file_source(episodes.name, data[1], what="SSDA903 Episodes file"),
    )
    origin = import_origin("kwg import ssda903", sources, organisation=la_number, organisation_system=LA_NUMBER_SYSTEM)
    report = asyncio.run(_context(load_settings(), lambda repo: import_ssda903(repo, *texts, la_number, origin=origin)))
    _context_summary(report, "episodes")


@import_app.command("ctf")
def ctf(
    file: Annotated[Path, typer.Argument(help="A Common Transfer File (XML)", exists=True, dir_okay=False)],
) -> None:
    """Common Transfer File: school and SEN provision as education context on known young people (by UPN)."""
    from datetime import UTC, datetime

    from gateway.imports.context import import_ctf

    data = file.read_bytes()
    today = datetime.now(UTC).date()
    origin = import_origin("kwg import ctf", (file_source(file.name, data, what="Common Transfer File"),))
    try:
        report = asyncio.run(_context(load_settings(), lambda repo: import_ctf(repo, data, as_of=today, origin=origin)))
    except (UnsafeXml, BadXml) as exc:  # refused before anything is read or written
        _stop(f"{file.name} is not a CTF the gateway can read: {exc}")
    _context_summary(report, "pupils")


def _utf8(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        _stop(f"{name} is not UTF-8 text (byte {exc.start}); save it as CSV UTF-8")


async def _context(settings: Settings, work: Any) -> Any:
    from gateway.store.db import create_engine
    from gateway.store.repository import SqlFhirRepository
    from gateway.validation import validate_resource

    engine = create_engine(settings)
    try:
        return await work(SqlFhirRepository(engine, validator=validate_resource))
    finally:
        await engine.dispose()


def _context_summary(report: Any, what: str) -> None:
    for error in report.errors[:SHOWN_ERRORS]:
        typer.echo(f"refused: {error}", err=True)
    typer.echo(
        f"{report.written} {what} written for {report.people_matched} known young people; "
        f"{report.people_unknown} not known to the gateway (not kept); {len(report.errors)} problem(s)"
    )
    raise typer.Exit(1 if report.errors else 0)
