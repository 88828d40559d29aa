"""A small, fast HL7 v2 tokenizer: delimiters, segments, fields, repetitions, components and escapes.

The gateway's hot path (every message of a trust's feed) only needs MSH and PID-3 to decide whether a message is
about someone in the cohort; :func:`peek` reads exactly that without splitting the rest of the message. Cohort
messages get :func:`parse`, which splits everything and decodes escapes on access.

Field numbering follows HL7: ``MSH-1`` is the field separator itself and ``MSH-2`` the encoding characters, so for
MSH the first ``|``-split piece after the name is ``MSH-2``; for every other segment ``XXX-1`` is the first piece.
Repetitions, components and subcomponents are numbered from 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SEGMENT_SEPARATOR = "\r"
_LINE_BREAKS = re.compile(r"\r\n|\n\r|\n|\r")
_BOM = "\ufeff"


class HL7ParseError(ValueError):
    """The text is not an HL7 v2 message this tokenizer can read. ``location`` names the segment/field."""

    def __init__(self, message: str, location: str = "") -> None:
        super().__init__(f"{location}: {message}" if location else message)
        self.location = location


@dataclass(frozen=True, slots=True)
class Delimiters:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @property
    def encoding_characters(self) -> str:
        return self.component + self.repetition + self.escape + self.subcomponent


DEFAULT_DELIMITERS = Delimiters()


def normalise(text: str) -> str:
    """Strip a BOM and surrounding blank lines; make every segment end with CR (LF and CRLF are common)."""
    if text.startswith(_BOM):
        text = text[1:]
    text = _LINE_BREAKS.sub(SEGMENT_SEPARATOR, text.lstrip("\r\n\t ").rstrip("\r\n"))
    return text


def delimiters_of(text: str) -> Delimiters:
    if not text.startswith("MSH") or len(text) < 8:
        raise HL7ParseError("a message must start with an MSH segment", "MSH")
    fs = text[3]
    stop = text.find(fs, 4)
    encoding = text[4 : stop if stop != -1 else min(len(text), 9)]
    if len(encoding) < 4:
        raise HL7ParseError(f"MSH-2 encoding characters {encoding!r} are incomplete", "MSH-2")
    chars = encoding[:4]
    if len(set(chars + fs)) != 5 or any(c.isalnum() or c in "\r\n" for c in chars + fs):
        raise HL7ParseError(f"MSH-1/MSH-2 delimiters {fs + encoding!r} are not distinct punctuation", "MSH-2")
    return Delimiters(field=fs, component=chars[0], repetition=chars[1], escape=chars[2], subcomponent=chars[3])


# -- escapes ---------------------------------------------------------------------------------------------------


def unescape(text: str, d: Delimiters = DEFAULT_DELIMITERS) -> str:
    r"""Decode HL7 escape sequences: \F\ \S\ \T\ \R\ \E\ and \Xhh...\ (hex bytes, read as UTF-8/Latin-1).

    Formatting escapes (\H\, \N\, \.br\ ...) and unknown ones are kept as written; an unterminated escape is kept
    as literal text rather than failing, as receivers commonly do.
    """
    esc = d.escape
    if esc not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != esc:
            out.append(ch)
            i += 1
            continue
        end = text.find(esc, i + 1)
        if end == -1:
            out.append(text[i:])
            break
        body = text[i + 1 : end]
        simple = {"F": d.field, "S": d.component, "T": d.subcomponent, "R": d.repetition, "E": d.escape}
        if body in simple:
            out.append(simple[body])
        elif body[:1] == "X" and len(body) > 1 and len(body) % 2 == 1 and _is_hex(body[1:]):
            raw = bytes.fromhex(body[1:])
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(raw.decode("latin-1"))
        else:
            out.append(text[i : end + 1])
        i = end + 1
    return "".join(out)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def escape(text: str, d: Delimiters = DEFAULT_DELIMITERS) -> str:
    """Encode a value so that it can stand in a field: the inverse of :func:`unescape` for plain text."""
    table = {
        d.escape: f"{d.escape}E{d.escape}",
        d.field: f"{d.escape}F{d.escape}",
        d.component: f"{d.escape}S{d.escape}",
        d.subcomponent: f"{d.escape}T{d.escape}",
        d.repetition: f"{d.escape}R{d.escape}",
    }
    out = []
    for ch in text:
        if ch in table:
            out.append(table[ch])
        elif ch in "\r\n":
            out.append(f"{d.escape}X{ord(ch):02X}{d.escape}")
        else:
            out.append(ch)
    return "".join(out)


# -- structure -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment: its name and its raw fields (``fields[0]`` is field 1, HL7 numbering, MSH included)."""

    name: str
    fields: tuple[str, ...]
    delimiters: Delimiters = DEFAULT_DELIMITERS

    def raw(self, number: int) -> str:
        """The raw (still escaped) text of field ``number`` (1-based); empty when absent."""
        if number < 1 or number > len(self.fields):
            return ""
        return self.fields[number - 1]

    def repetitions(self, number: int) -> list[str]:
        value = self.raw(number)
        if self.name == "MSH" and number in (1, 2):
            return [value]
        return value.split(self.delimiters.repetition) if value else []

    def component(self, number: int, component: int = 1, repetition: int = 1, subcomponent: int = 0) -> str:
        """A decoded value: field ``number``, its ``repetition``-th repetition, ``component``, ``subcomponent``.

        ``subcomponent=0`` returns the whole component (subcomponent separators decoded as text).
        """
        reps = self.repetitions(number)
        if repetition < 1 or repetition > len(reps):
            return ""
        if self.name == "MSH" and number in (1, 2):
            return reps[0]
        comps = reps[repetition - 1].split(self.delimiters.component)
        if component < 1 or component > len(comps):
            return ""
        value = comps[component - 1]
        if subcomponent:
            subs = value.split(self.delimiters.subcomponent)
            if subcomponent > len(subs):
                return ""
            value = subs[subcomponent - 1]
        return unescape(value, self.delimiters)

    def value(self, number: int) -> str:
        """Field ``number``'s first repetition, first component, decoded (the common case)."""
        return self.component(number, 1, 1)


@dataclass(slots=True)
class Message:
    segments: list[Segment]
    delimiters: Delimiters
    text: str = field(repr=False)

    def segment(self, name: str, occurrence: int = 1) -> Segment | None:
        seen = 0
        for seg in self.segments:
            if seg.name == name:
                seen += 1
                if seen == occurrence:
                    return seg
        return None

    def all(self, name: str) -> list[Segment]:
        return [s for s in self.segments if s.name == name]

    @property
    def msh(self) -> Segment:
        return self.segments[0]


_SEGMENT_NAME = re.compile(r"^[A-Z][A-Z0-9]{2}$")


def _split_segment(line: str, d: Delimiters, index: int) -> Segment:
    name = line[:3]
    if not _SEGMENT_NAME.match(name):
        raise HL7ParseError(f"segment {index + 1} has no valid name: {line[:10]!r}", f"segment {index + 1}")
    if len(line) > 3 and line[3] != d.field:
        raise HL7ParseError(f"segment {name} does not continue with the field separator", name)
    if name == "MSH":
        rest = line[4:].split(d.field)
        return Segment(name, (d.field, *rest), d)
    return Segment(name, tuple(line[4:].split(d.field)) if len(line) > 4 else (), d)


def parse(text: str) -> Message:
    """Split a whole message. Raises :class:`HL7ParseError` when it cannot be read."""
    text = normalise(text)
    d = delimiters_of(text)
    lines = [line for line in text.split(SEGMENT_SEPARATOR) if line]
    return Message([_split_segment(line, d, i) for i, line in enumerate(lines)], d, text)


# -- the hot path ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatientIdentifier:
    value: str
    assigning_authority: str
    type_code: str


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the listener and the cohort filter need: MSH facts and PID-3, read without a full parse."""

    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    message_type: str  # MSH-9.1, e.g. ADT
    trigger_event: str  # MSH-9.2, e.g. A01
    control_id: str  # MSH-10
    processing_id: str  # MSH-11
    version: str  # MSH-12
    charset: str  # MSH-18 (empty: ASCII / the receiver's default)
    identifiers: tuple[PatientIdentifier, ...]

    @property
    def nhs_number(self) -> str | None:
        """The NHS number in PID-3 (assigning authority NHS; type NH, or HN as some Epic feeds send it)."""
        for ident in self.identifiers:
            if ident.assigning_authority.upper() == "NHS" and ident.type_code.upper() in ("NH", "HN", ""):
                return ident.value
        return None


def _line_end(text: str, start: int) -> int:
    ends = [i for i in (text.find("\r", start), text.find("\n", start)) if i != -1]
    return min(ends) if ends else len(text)


def peek(text: str) -> Envelope:
    """Read MSH and PID-3 only (no copy or split of the rest). Raises :class:`HL7ParseError` when MSH is unreadable."""
    if text.startswith(_BOM):
        text = text[1:]
    text = text.lstrip("\r\n\t ")
    d = delimiters_of(text)
    msh = _split_segment(text[: _line_end(text, 0)], d, 0)
    identifiers: tuple[PatientIdentifier, ...] = ()
    marker = "PID" + d.field
    start = text.find(marker)
    while start > 0 and text[start - 1] not in "\r\n":
        start = text.find(marker, start + 1)
    if start > 0:
        pid = _split_segment(text[start : _line_end(text, start)], d, 1)
        idents = []
        for rep in pid.repetitions(3):
            comps = rep.split(d.component)
            value = unescape(comps[0], d) if comps else ""
            if not value:
                continue
            authority = comps[3].split(d.subcomponent)[0] if len(comps) > 3 else ""
            type_code = comps[4] if len(comps) > 4 else ""
            idents.append(PatientIdentifier(value, unescape(authority, d), unescape(type_code, d)))
        identifiers = tuple(idents)
    return Envelope(
        sending_application=msh.value(3),
        sending_facility=msh.value(4),
        receiving_application=msh.value(5),
        receiving_facility=msh.value(6),
        message_type=msh.component(9, 1),
        trigger_event=msh.component(9, 2),
        control_id=msh.value(10),
        processing_id=msh.value(11),
        version=msh.value(12),
        charset=msh.value(18),
        identifiers=identifiers,
    )
