"""Parse untrusted XML without entities: a document with a DOCTYPE is refused outright. Pure.

CTF files come from outside the gateway. The stdlib ``xml.etree`` parser expands internal entities (the "billion
laughs" blow-up) and its C accelerator gives no hook to stop it, so this drives expat directly: a DOCTYPE, an
entity declaration or an external entity reference stops the parse with :class:`UnsafeXml`. CTF never needs a
DTD. Namespace prefixes are dropped from element names (CTF has none; a producer adding one changes nothing).

The character encoding a document declares must be one a CTF is written in (UTF-8, UTF-16, ASCII, Latin-1,
Windows-1252): expat hands any other name to Python's codecs, which answer unknown names, codecs that are not text
encodings (``base64``, ``rot13``) or that reinterpret bytes (``unicode_escape``) with errors of their own or, worse,
a different document. Each is :class:`BadXml`.
"""

from __future__ import annotations

import codecs
import re
from typing import NoReturn
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat

#: Refuse anything bigger: a year group's CTF is a few megabytes.
MAX_BYTES = 50 * 1024 * 1024


class UnsafeXml(ValueError):
    """The document uses a construct we refuse (DTD, entities) or is too large."""


class BadXml(ValueError):
    """The document is not well-formed XML; the message gives the line and column."""


#: The encodings a CTF may declare (Python's canonical codec names).
ENCODINGS = frozenset({"utf-8", "utf-16", "utf-16-le", "utf-16-be", "ascii", "iso8859-1", "latin-1", "cp1252"})
_DECLARATION = re.compile(rb"""^(?:\xef\xbb\xbf)?<\?xml[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")


def _check_encoding(data: bytes) -> None:
    """BadXml unless the XML declaration names no encoding or one a CTF is written in."""
    found = _DECLARATION.match(data[:200])
    if found is None:
        return
    declared = found.group(1).decode("ascii", "replace")
    try:
        name = codecs.lookup(declared).name
    except LookupError:
        name = ""
    if name not in ENCODINGS:
        raise BadXml(f"the character encoding {declared[:40]!r} is not accepted (save the CTF as UTF-8)")


def _local(name: str) -> str:
    return name.rsplit(":", 1)[-1]


def parse(data: bytes) -> Element:
    """The root element of ``data``; UnsafeXml or BadXml when it cannot be read safely."""
    if len(data) > MAX_BYTES:
        raise UnsafeXml(f"the document is larger than {MAX_BYTES} bytes")
    _check_encoding(data)
    builder = TreeBuilder()
    parser = expat.ParserCreate()

    def refuse_doctype(*_: object) -> NoReturn:
        raise UnsafeXml("a DOCTYPE is not accepted (no DTDs or entities in a CTF)")

    def refuse_entity(*_: object) -> NoReturn:
        raise UnsafeXml("entity declarations and references are not accepted")

    def start(name: str, attributes: dict[str, str]) -> None:
        builder.start(_local(name), {k: v for k, v in attributes.items() if not k.startswith("xmlns")})

    def end(name: str) -> None:
        builder.end(_local(name))

    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_entity
    parser.UnparsedEntityDeclHandler = refuse_entity
    parser.ExternalEntityRefHandler = refuse_entity
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise BadXml(f"line {exc.lineno}, column {exc.offset}: {expat.errors.messages[exc.code]}") from None
    except (UnsafeXml, BadXml):
        raise
    except (LookupError, UnicodeError, ValueError) as exc:  # from the codec expat was handed for the document
        raise BadXml(f"the document cannot be decoded: {type(exc).__name__}") from None
    return builder.close()
