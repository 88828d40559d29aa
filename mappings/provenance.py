"""Provenance resources for writes by clients and connectors: who wrote (a client or a connector's device, for an
organisation), from what (a file, a source system), why (purpose of use), when, and which versions. Pure.

The gateway says *who* as an :class:`Author` and *from what* as :class:`Source` items; :func:`provenance` makes the
FHIR R4 Provenance. Free text that reaches a FHIR ``string`` (client ids, organisation codes from a token, file
names) is cleaned first: a FHIR string may hold no control characters other than tab, CR and LF and may not be
blank, so a value that would be invalid is tidied or left out rather than failing the write it describes.

``tests/mappings/test_provenance.py`` checks with hypothesis that whatever the author and sources, the result is
valid R4 (the store does not validate this resource again on every write: it is ours, built here).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from mappings.identifiers import ODS_ORGANISATION_SYSTEM

DATA_OPERATION: Final = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PARTICIPANT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
PURPOSE_OF_USE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActReason"

#: A FHIR string's limit is 1 MB; an identifier or display of ours never needs more than this.
MAX_TEXT: Final = 1024

Resource = dict[str, Any]


class Activity(StrEnum):
    """What the write did to the record (v3 DataOperation)."""

    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"

    @property
    def display(self) -> str:
        return {"CREATE": "create", "UPDATE": "revise", "DELETE": "delete"}[self.value]


@dataclass(frozen=True, slots=True)
class Author:
    """Who wrote: a client or a connector (``system`` + ``value`` identify it), acting for ``organisation``.

    ``kind`` is the FHIR type ``who`` refers to (software: ``Device``); ``purpose`` a v3 ActReason (code, display).
    """

    system: str
    value: str
    display: str | None = None
    kind: str = "Device"
    organisation: str | None = None
    organisation_system: str = ODS_ORGANISATION_SYSTEM
    purpose: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Source:
    """What the data came from (``entity`` with role source): a file, a source system, a message.

    ``system`` + ``value`` identify it when it has an identifier (a file's SHA-256, a server's base URL).
    """

    display: str
    system: str | None = None
    value: str | None = None


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a set of writes comes from: its author and its sources (one Provenance per write names both)."""

    author: Author
    sources: tuple[Source, ...] = ()


def versioned(res_type: str, res_id: str, version: int) -> str:
    """A version-specific reference, ``Type/id/_history/n``."""
    return f"{res_type}/{res_id}/_history/{version}"


_NOT_IN_STRINGS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u0085\u2028\u2029]|\s")


def fhir_text(value: str | None) -> str | None:
    """``value`` as a valid FHIR string (whitespace runs become one space, trimmed, capped), None when blank."""
    if value is None:
        return None
    cleaned = " ".join(part for part in _NOT_IN_STRINGS.split(value) if part)[:MAX_TEXT].strip()
    return cleaned or None


def _identifier(system: str | None, value: str | None) -> dict[str, str] | None:
    text = fhir_text(value)
    if text is None:
        return None
    uri = fhir_text(system)
    return {"system": uri, "value": text} if uri is not None and " " not in uri else {"value": text}


def _agent(author: Author) -> dict[str, Any]:
    who: dict[str, Any] = {"type": author.kind}
    identifier = _identifier(author.system, author.value)
    if identifier is not None:
        who["identifier"] = identifier
    display = fhir_text(author.display)
    if display is not None or identifier is None:
        who["display"] = display or "unidentified client"
    agent: dict[str, Any] = {
        "type": {"coding": [{"system": PARTICIPANT_TYPE, "code": "author", "display": "Author"}]},
        "who": who,
    }
    organisation = _identifier(author.organisation_system, author.organisation)
    if organisation is not None:
        agent["onBehalfOf"] = {"type": "Organization", "identifier": organisation}
    return agent


def _entity(source: Source) -> dict[str, Any]:
    what: dict[str, Any] = {"display": fhir_text(source.display) or "unnamed source"}
    identifier = _identifier(source.system, source.value)
    if identifier is not None:
        what["identifier"] = identifier
    return {"role": "source", "what": what}


def provenance(
    *,
    provenance_id: str,
    targets: Sequence[str],
    recorded: str,
    activity: Activity,
    origin: Origin,
) -> Resource:
    """The Provenance of one write: ``targets`` are the versions it wrote (``Type/id/_history/n``), ``recorded``
    a FHIR instant."""
    resource: Resource = {
        "resourceType": "Provenance",
        "id": provenance_id,
        "target": [{"reference": t} for t in targets],
        "recorded": recorded,
        "activity": {"coding": [{"system": DATA_OPERATION, "code": activity.value, "display": activity.display}]},
        "agent": [_agent(origin.author)],
    }
    purpose = origin.author.purpose
    if purpose is not None:
        resource["reason"] = [{"coding": [{"system": PURPOSE_OF_USE, "code": purpose[0], "display": purpose[1]}]}]
    if origin.sources:
        resource["entity"] = [_entity(s) for s in origin.sources]
    return resource
