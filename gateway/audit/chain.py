"""Hash chaining of AuditEvents: tampering with the stored trail becomes evident.

Each process that writes AuditEvents (``gateway.audit.trail.AuditTrail``) keeps a *stream*: a random id chosen
when it starts, a sequence number and the hash of the last event it wrote. Every event it writes then carries one
more ``AuditEvent.entity`` (role 'Job stream' from the object-role code system) whose ``detail`` items are:

    stream     the stream id
    sequence   1, 2, 3, ... within the stream
    previous   the hash of the stream's previous event ("" for the first)
    hash       SHA-256 (hex) of the event's canonical JSON without ``meta`` and without this ``hash`` item

Standard elements only (``entity.detail``), so no extension and no profile change is needed. :func:`verify` reads
a trail back and reports what breaks a chain: an event whose content no longer gives its hash (edited), a
``previous`` that is not the hash of the event before (an event removed or inserted), a sequence gap (removed),
a repeated sequence number (copied). Removing a stream's *last* events cannot be seen from the trail alone: keep
each stream's head elsewhere (``kwg audit verify`` prints them) to detect that.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

OBJECT_ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/object-role"
CHAIN_ROLE = {"system": OBJECT_ROLE_SYSTEM, "code": "20", "display": "Job Stream"}
CHAIN_DESCRIPTION = "audit hash chain"

Resource = dict[str, Any]


def _canonical(event: Resource) -> bytes:
    return orjson.dumps({k: v for k, v in event.items() if k != "meta"}, option=orjson.OPT_SORT_KEYS)


def digest(event: Resource) -> str:
    """The hash of an event: its canonical JSON (sorted keys, no ``meta``) without the chain's ``hash`` item."""
    unsealed = dict(event)
    unsealed["entity"] = [_without_hash(e) if _is_chain(e) else e for e in event.get("entity", [])]
    return hashlib.sha256(_canonical(unsealed)).hexdigest()


def _is_chain(entity: Any) -> bool:
    return isinstance(entity, dict) and entity.get("description") == CHAIN_DESCRIPTION


def _without_hash(entity: Resource) -> Resource:
    return {**entity, "detail": [d for d in entity.get("detail", []) if d.get("type") != "hash"]}


@dataclass
class ChainHead:
    """Where a stream stands: its id, the last sequence number written and that event's hash."""

    stream: str
    sequence: int = 0
    last_hash: str = ""


def seal(events: list[Resource], head: ChainHead) -> tuple[list[Resource], ChainHead]:
    """The events with their chain entities, and the head after them (the caller keeps it once they are stored)."""
    sequence, previous = head.sequence, head.last_hash
    sealed: list[Resource] = []
    for event in events:
        sequence += 1
        details: list[Resource] = [
            {"type": "stream", "valueString": head.stream},
            {"type": "sequence", "valueString": str(sequence)},
            {"type": "previous", "valueString": previous},
        ]
        link: Resource = {"role": CHAIN_ROLE, "description": CHAIN_DESCRIPTION, "detail": details}
        chained = {**event, "entity": [*event.get("entity", []), link]}
        previous = digest(chained)
        details.append({"type": "hash", "valueString": previous})
        sealed.append(chained)
    return sealed, ChainHead(head.stream, sequence, previous)


@dataclass(frozen=True)
class ChainLink:
    event_id: str
    stream: str
    sequence: int
    previous: str
    hash: str
    actual: str  # the hash the event's content gives now


def link_of(event: Resource) -> ChainLink | None:
    """The chain entity of a stored event, or None for an event written without chaining."""
    for entity in event.get("entity", []):
        if _is_chain(entity):
            detail = {d.get("type"): d.get("valueString", "") for d in entity.get("detail", [])}
            try:
                sequence = int(detail.get("sequence", ""))
            except ValueError:
                sequence = -1
            return ChainLink(
                str(event.get("id", "")),
                str(detail.get("stream", "")),
                sequence,
                str(detail.get("previous", "")),
                str(detail.get("hash", "")),
                digest(event),
            )
    return None


@dataclass(frozen=True)
class ChainReport:
    """What a verification found: events checked, unchained events, each stream's head, and the problems."""

    checked: int
    unchained: int
    heads: dict[str, ChainHead]
    problems: list[str]

    @property
    def intact(self) -> bool:
        return not self.problems


def verify(events: Iterable[Resource]) -> ChainReport:
    """Check every stream of a trail (events in any order)."""
    streams: dict[str, list[ChainLink]] = defaultdict(list)
    checked = unchained = 0
    for event in events:
        checked += 1
        link = link_of(event)
        if link is None:
            unchained += 1
        else:
            streams[link.stream].append(link)
    problems: list[str] = []
    heads: dict[str, ChainHead] = {}
    for stream, links in sorted(streams.items()):
        links.sort(key=lambda link: link.sequence)
        expected_sequence, previous = 1, ""
        for link in links:
            where = f"stream {stream} #{link.sequence} (AuditEvent/{link.event_id})"
            if link.actual != link.hash:
                problems.append(f"{where}: its content does not give its hash (edited)")
            if link.sequence < expected_sequence:
                problems.append(f"{where}: sequence number repeated")
            elif link.sequence > expected_sequence:
                problems.append(f"{where}: events {expected_sequence}..{link.sequence - 1} are missing")
            elif link.previous != previous:
                problems.append(f"{where}: does not follow the event before it (an event was replaced)")
            expected_sequence, previous = link.sequence + 1, link.hash
        heads[stream] = ChainHead(stream, links[-1].sequence, links[-1].hash)
    return ChainReport(checked, unchained, heads, problems)
