"""Import a register sheet through the domain service: check every row, then write each valid row on its own.

Every row is read and checked first (:func:`~gateway.imports.register_rows.read_row`), so a file with a wrong
column fails row by row in the report before anything is written. Then each valid row is reconciled with what the
gateway holds for its NHS number and written as one transaction (the person and their register entry together,
with the register rules the API applies, and a Provenance for each record naming the importing client and the
file): a row the gateway refuses is reported and the next row goes on. A dry run reads the same and writes
nothing, so it reports exactly what a real run would create, update or leave alone.

The report identifies rows by spreadsheet row number and masked NHS number (``999 *** **33``), never by name or
full NHS number, so it can be mailed back to the team that sent the file.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import ValidationError

from gateway.domain.service import KeyworkingRecords
from gateway.errors import GatewayError, InvalidResource, NotFound
from gateway.imports.columns import ColumnMap, Item
from gateway.imports.register_file import RegisterSheet
from gateway.imports.register_rows import (
    Change,
    Planned,
    RegisterRow,
    RowError,
    RowRefused,
    entry_id_for,
    mask_nhs_number,
    pydantic_message,
    read_row,
    reconcile,
)
from mappings.identifiers import NHS_NUMBER_SYSTEM
from mappings.keyworking.errors import ImpossibleTransition
from mappings.keyworking.records import Person, RegisterEntry
from mappings.provenance import Origin


class Outcome(StrEnum):
    """What importing a row did (or, in a dry run, would do)."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class RowReport:
    """One row's outcome; ``errors`` is empty unless the row was refused."""

    row: int
    masked_nhs_number: str
    outcome: Outcome
    errors: tuple[RowError, ...] = ()


@dataclass(slots=True)
class ImportReport:
    dry_run: bool
    rows: list[RowReport] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.rows if r.outcome is outcome)

    @property
    def created(self) -> int:
        return self.count(Outcome.CREATED)

    @property
    def updated(self) -> int:
        return self.count(Outcome.UPDATED)

    @property
    def unchanged(self) -> int:
        return self.count(Outcome.UNCHANGED)

    @property
    def refused(self) -> int:
        return self.count(Outcome.REFUSED)

    def summary(self) -> str:
        verb = "would be " if self.dry_run else ""
        parts = [f"{self.created} {verb}created", f"{self.updated} {verb}updated", f"{self.unchanged} unchanged"]
        rows = f"{len(self.rows)} row" + ("" if len(self.rows) == 1 else "s")
        return f"{rows}: {', '.join(parts)}, {self.refused} refused"


#: Called after each row is done with (rows done, rows in the file).
Progress = Callable[[int, int], None]


async def import_register(
    service: KeyworkingRecords,
    sheet: RegisterSheet,
    columns: ColumnMap,
    *,
    origin: Origin,
    register_ods: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    now: Callable[[], datetime] | None = None,
) -> ImportReport:
    """Import every row of ``sheet``; returns the per-row report (rows in file order). Each record written is
    attributed to ``origin`` (the importing client and the file): a Provenance per record write."""
    imported_at = (now or (lambda: datetime.now(UTC)))()
    service = service.attributed(origin)
    today = service.today()
    report = ImportReport(dry_run)
    checked, refused = check_rows(sheet, columns, register_ods=register_ods)
    outcomes: dict[int, RowReport] = {r.row: r for r in refused}
    total, done = len(sheet.rows), len(refused)
    if progress is not None and done:
        progress(done, total)
    for row in checked:
        outcomes[row.row] = await _import_row(service, row, imported_at=imported_at, today=today, dry_run=dry_run)
        done += 1
        if progress is not None:
            progress(done, total)
    report.rows = [outcomes[raw.number] for raw in sheet.rows]
    return report


def check_rows(
    sheet: RegisterSheet, columns: ColumnMap, *, register_ods: str | None = None
) -> tuple[list[RegisterRow], list[RowReport]]:
    """Read every row; the rows fit to write and the refused ones (an NHS number on two rows refuses both)."""
    good: list[RegisterRow] = []
    refused: list[RowReport] = []
    for raw in sheet.rows:
        try:
            good.append(read_row(raw.number, raw.cells, columns, register_ods=register_ods))
        except RowRefused as exc:
            refused.append(RowReport(raw.number, _masked(raw.cells, columns), Outcome.REFUSED, exc.errors))
    rows_of: dict[str, list[int]] = defaultdict(list)
    for row in good:
        rows_of[row.nhs_number].append(row.row)
    header = columns.header(Item.NHS_NUMBER) or Item.NHS_NUMBER.value
    for row in [r for r in good if len(rows_of[r.nhs_number]) > 1]:
        others = ", ".join(str(n) for n in rows_of[row.nhs_number] if n != row.row)
        error = RowError(row.row, header, f"nhs_number: the same NHS number is on row {others}; keep one row")
        refused.append(RowReport(row.row, row.masked_nhs_number, Outcome.REFUSED, (error,)))
    return [r for r in good if len(rows_of[r.nhs_number]) == 1], refused


def _masked(cells: dict[str, str], columns: ColumnMap) -> str:
    return mask_nhs_number(columns.cell(cells, Item.NHS_NUMBER))


async def _import_row(
    service: KeyworkingRecords, row: RegisterRow, *, imported_at: datetime, today: date, dry_run: bool
) -> RowReport:
    def refused(*errors: RowError) -> RowReport:
        return RowReport(row.row, row.masked_nhs_number, Outcome.REFUSED, errors)

    try:
        stored_person, stored_entry = await stored_records(service, row)
        planned = reconcile(
            row,
            stored_person=stored_person,
            stored_entry=stored_entry,
            imported_at=imported_at,
            today=today,
        )
        if not dry_run:
            await write(service, planned)
    except RowRefused as exc:
        return refused(*exc.errors)
    except ValidationError as exc:
        return refused(*(RowError(row.row, None, pydantic_message(e)) for e in exc.errors()))
    except ImpossibleTransition as exc:
        return refused(RowError(row.row, None, exc.message))
    except InvalidResource as exc:
        # A profile validator's diagnostics may quote element values (a name): report only where the problems are.
        paths = sorted({path for i in exc.issues for path in i.expression})
        return refused(RowError(row.row, None, f"{exc.message} at {', '.join(paths) or 'the resource'}"))
    except GatewayError as exc:
        details = [i.diagnostics for i in exc.issues if i.diagnostics and i.diagnostics != exc.message]
        return refused(RowError(row.row, None, "; ".join([exc.message, *details])))
    return RowReport(row.row, row.masked_nhs_number, Outcome(planned.change.value))


class DuplicatePeople(GatewayError):
    """The gateway holds more than one person with the row's NHS number: a person must resolve it."""


async def stored_records(service: KeyworkingRecords, row: RegisterRow) -> tuple[Person | None, RegisterEntry | None]:
    """The person the gateway holds under the row's NHS number, and the register entry the row updates.

    The entry is the one with the id derived from the NHS number; failing that (a person registered through the
    API), the person's latest entry that has not ended.
    """
    people = await service.people_by_identifier(NHS_NUMBER_SYSTEM, row.nhs_number)
    if len(people) > 1:
        raise DuplicatePeople(
            f"the gateway holds {len(people)} people with this NHS number; merge them before importing this row"
        )
    person = people[0] if people else None
    try:
        return person, await service.get(RegisterEntry, entry_id_for(row.nhs_number))
    except NotFound:
        pass
    if person is None or person.id is None:
        return person, None
    open_entries = [e for e in await service.for_person(RegisterEntry, person.id) if e.ended_on is None]
    return person, (open_entries[-1] if open_entries else None)


async def write(service: KeyworkingRecords, planned: Planned) -> None:
    """The row's records in one transaction: both are written, or neither."""
    if planned.change is Change.UNCHANGED:
        return
    async with service.together() as tx:
        if planned.person_change is not Change.UNCHANGED:
            await tx.put(planned.person)
        if planned.entry_change is not Change.UNCHANGED:
            await tx.put(planned.entry)


# -- the report file ------------------------------------------------------------------------------------------------

REPORT_HEADERS = ("row", "nhs_number", "outcome", "column", "message")


def report_lines(report: ImportReport) -> list[tuple[str, ...]]:
    """One line per row, or per error of a refused row (masked NHS numbers only)."""
    lines: list[tuple[str, ...]] = []
    for row in report.rows:
        if not row.errors:
            lines.append((str(row.row), row.masked_nhs_number, row.outcome.value, "", ""))
        for error in row.errors:
            lines.append((str(row.row), row.masked_nhs_number, row.outcome.value, error.column or "", error.message))
    return lines


def write_report(path: Path, report: ImportReport) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(REPORT_HEADERS)
        writer.writerows(report_lines(report))
