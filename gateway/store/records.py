"""Values the repository returns: stored versions and write outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from gateway.errors import Gone


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"  # conditional create matched an existing resource
    DELETED = "deleted"
    NOTHING = "nothing"  # delete of a resource that does not exist or is already deleted


@dataclass(frozen=True, slots=True)
class StoredResource:
    """One version of a resource as stored: its canonical JSON bytes and version metadata."""

    res_type: str
    res_id: str
    version_id: int
    last_updated: int  # microseconds since epoch, UTC
    content: bytes | None  # None for a delete
    method: str = "update"

    @property
    def deleted(self) -> bool:
        return self.content is None

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'

    @property
    def reference(self) -> str:
        return f"{self.res_type}/{self.res_id}"

    def as_dict(self) -> dict[str, Any]:
        if self.content is None:
            raise Gone(f"{self.reference} is deleted")
        result: dict[str, Any] = orjson.loads(self.content)
        return result


@dataclass(frozen=True, slots=True)
class WriteResult:
    outcome: Outcome
    resource: StoredResource | None


@dataclass(frozen=True, slots=True)
class HistoryPage:
    entries: list[StoredResource]
    total: int
    offset: int
    count: int
