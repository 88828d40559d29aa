"""From the bytes of one MLLP frame to message text: BOM, character set (MSH-18), segment terminators.

The encoding is explicit, never guessed: MSH-18 empty, ``ASCII`` or ``UNICODE UTF-8`` read as UTF-8 (a superset
of ASCII), ``8859/1`` as Latin-1, and so on. Bytes that are not valid in the declared (or default) character set
are an error the sender must hear about (AR), not something to repair silently: a wrongly decoded name would be
written into a care record.
"""

from __future__ import annotations

from mappings.hl7v2.tokenizer import HL7ParseError, normalise

UTF8_BOM = b"\xef\xbb\xbf"

# HL7 table 0211 (alternate character sets) → Python codec.
CHARSETS: dict[str, str] = {
    "": "utf-8",
    "ASCII": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/5": "iso8859-5",
    "8859/7": "iso8859-7",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
}


class UnsupportedCharset(HL7ParseError):
    """MSH-18 names a character set we do not read, or the bytes are not valid in it."""


def declared_charset(payload: bytes) -> str:
    """MSH-18 read straight from the bytes (MSH is ASCII in every character set we accept)."""
    end = len(payload)
    for terminator in (b"\r", b"\n"):
        i = payload.find(terminator)
        if i != -1:
            end = min(end, i)
    line = payload[:end].decode("latin-1")
    if not line.startswith("MSH") or len(line) < 4:
        return ""
    fields = line.split(line[3])
    return fields[17].split(fields[1][:1] or "^")[0].strip().upper() if len(fields) > 17 and fields[1] else ""


def decode_message(payload: bytes) -> str:
    """The message text, BOM removed, every segment ending in CR. Raises :class:`HL7ParseError`."""
    if payload.startswith(UTF8_BOM):
        payload = payload[len(UTF8_BOM) :]
    payload = payload.lstrip(b"\r\n\t ")
    charset = declared_charset(payload)
    codec = CHARSETS.get(charset)
    if codec is None:
        raise UnsupportedCharset(f"character set {charset!r} is not supported", "MSH-18")
    try:
        text = payload.decode(codec)
    except UnicodeDecodeError as exc:
        raise UnsupportedCharset(
            f"byte {exc.start} is not valid {codec}; declare the character set in MSH-18 (e.g. 8859/1)", "MSH-18"
        ) from None
    return normalise(text)
