"""Logging set up from settings: level, plain or JSON lines (with the request id: gateway.request_ids), and a
filter that keeps NHS numbers out of logs.

Log records never carry resource content by design; the filter is the second line of defence: any run of ten
digits (spaced 3-3-4 or not) that passes the NHS number Modulus 11 check is masked before a record is written.
"""

from __future__ import annotations

import logging
import re
import sys

import orjson

from gateway.request_ids import RequestIdFilter
from gateway.settings import Settings
from mappings.identifiers import is_nhs_number

_NHS_LIKE = re.compile(r"(?<!\d)(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?!\d)")


def mask_nhs_numbers(text: str) -> str:
    def _mask(m: re.Match[str]) -> str:
        digits = "".join(m.groups())
        return "[NHS number]" if is_nhs_number(digits) else m.group(0)

    return _NHS_LIKE.sub(_mask, text)


class RedactingFilter(logging.Filter):
    """Masks NHS numbers in the formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_nhs_numbers(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "-")
        if request_id != "-":
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging(settings: Settings) -> None:
    """Configure the root logger once per process (idempotent)."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "kwg", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.kwg = True  # type: ignore[attr-defined]
        handler.addFilter(RedactingFilter())
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    handler.setFormatter(
        JsonFormatter() if settings.log_json else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root.setLevel(settings.log_level.upper())
