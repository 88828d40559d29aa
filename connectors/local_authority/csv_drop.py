"""Drop changes as CSV rows into a folder the local authority collects from: one file per day, replaced atomically.

Each push appends its rows to ``{prefix}-{YYYY-MM-DD}.csv`` (UTC day): the current file (if any) and the new rows
are written to a temporary file in the same folder, flushed to disk, then renamed over the day's file. A reader
therefore sees yesterday's complete file or today's complete file, never half a row. A lock file serialises two
workers appending to the same day. Columns: the envelope (``ENVELOPE_FIELDS``) then the configured ones.

Cells starting with ``= + - @`` (or a tab or carriage return) get a leading apostrophe, so a spreadsheet opening
the file never runs one as a formula (CSV injection).
"""

from __future__ import annotations

import asyncio
import csv
import fcntl
import io
import os
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote

from connectors.base import Change, ConfigurationError, PushOutcome, PushReport, TransientError
from connectors.local_authority.config import ENVELOPE_FIELDS, LocalAuthorityCsvConfig
from connectors.local_authority.document import compile_mapping, document

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _today() -> date:
    return datetime.now(UTC).date()


def cell(value: Any) -> str:
    """A value as a CSV cell: empty for None, ``true``/``false`` for booleans, formulas defused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


class LocalAuthorityCsvConnector:
    """The LA CSV file drop. ``today`` is for tests (which day's file a push appends to)."""

    kind: ClassVar[str] = "local-authority-csv"

    def __init__(self, config: LocalAuthorityCsvConfig, *, today: Callable[[], date] = _today) -> None:
        self.config = config
        self.mapping = compile_mapping(config.columns)
        self.header = [*ENVELOPE_FIELDS, *self.mapping]
        self.folder = Path(unquote(config.endpoint.path or "/"))
        self.today = today

    def path_for(self, day: date) -> Path:
        return self.folder / f"{self.config.file_prefix}-{day.isoformat()}.csv"

    async def aclose(self) -> None:
        return None

    async def check(self) -> None:
        if not self.folder.is_dir():
            raise ConfigurationError(f"the drop folder {self.folder} does not exist")
        if not os.access(self.folder, os.W_OK):
            raise ConfigurationError(f"the drop folder {self.folder} is not writable")

    async def push(self, changes: Sequence[Change]) -> PushReport:
        if not changes:
            return PushReport()
        rows = [document(c, self.mapping) for c in changes]
        try:
            await asyncio.to_thread(self._append, self.path_for(self.today()), rows)
        except OSError as exc:  # a full disk or a vanished share: nothing was renamed into place, retry all
            raise TransientError(f"could not write the CSV drop: {type(exc).__name__}") from exc
        return PushReport([PushOutcome(c.delivery_id, True) for c in changes])

    def _append(self, target: Path, rows: list[dict[str, Any]]) -> None:
        lock = target.with_name(f".{target.name}.lock")
        with open(lock, "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                existing = target.read_bytes() if target.exists() else b""
                self._replace(target, existing, rows)
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _replace(self, target: Path, existing: bytes, rows: list[dict[str, Any]]) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        if not existing:
            writer.writerow(self.header)
        for row in rows:
            writer.writerow([cell(row[name]) for name in self.header])
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(existing)
                out.write(buffer.getvalue().encode("utf-8"))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
