"""The error an ADT message raises when a field cannot be read or an event cannot apply. Pure.

``AdtError`` is an :class:`~mappings.hl7v2.tokenizer.HL7ParseError`, so code that already turns tokenizer errors
into an AE acknowledgement (ERR naming the location) handles it unchanged. The location is what the sender needs
to find the fault: a segment (``PV1``), a field (``PID-7``) or a component (``MSH-9.2``).
"""

from __future__ import annotations

from mappings.hl7v2.tokenizer import HL7ParseError


class AdtError(HL7ParseError):
    """An ADT message that says something the gateway cannot record; ``location`` names the segment/field."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(message, location)
        self.reason = message
