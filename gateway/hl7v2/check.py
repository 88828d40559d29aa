"""``kwg hl7 check FILE``: the listener's own envelope checks, then an hl7apy structure check.

hl7apy is far too slow for the path every message takes (about 20 ms a message), but it knows the HL7 message
structures; here it runs once, on demand, in tolerant mode (strict mode rejects real NHS feeds, e.g. an ODS code
in PD1-3.3).
"""

from __future__ import annotations

from pathlib import Path

from gateway.hl7v2.decoding import decode_message
from gateway.hl7v2.listener import check_envelope
from mappings.hl7v2.tokenizer import HL7ParseError, peek


def check_text(payload: bytes) -> list[str]:
    """Findings, one line each, starting ``error:`` (the listener or hl7apy cannot read it) or ``warning:`` (hl7apy's
    validation against the standard's structures, which real NHS feeds often do not follow to the letter)."""
    try:
        text = decode_message(payload)
        envelope = peek(text)
    except HL7ParseError as exc:
        return [f"error: {exc}"]
    problems = []
    error = check_envelope(envelope)
    if error is not None:
        problems.append(f"error: {error.segment}-{error.field}: {error.message}")
    from hl7apy.core import Message
    from hl7apy.parser import parse_message

    try:
        message: Message = parse_message(text, find_groups=True)
    except Exception as exc:  # hl7apy raises its own and plain exceptions for malformed input
        problems.append(f"error: structure: {type(exc).__name__}: {exc}")
        return problems
    try:
        message.validate()
    except Exception as exc:  # hl7apy fails in many ways on real feeds, which often differ from the standard
        problems.append(f"warning: structure: {type(exc).__name__}: {exc}")
    return problems


def check_file(path: Path) -> list[str]:
    return check_text(path.read_bytes())
