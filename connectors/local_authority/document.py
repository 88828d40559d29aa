"""One change as the flat document a local authority receives: the envelope plus the mapped fields. Pure.

The envelope (resource type, id, version, deleted) lets the LA apply changes in order and recognise a change it
has already received (the same type, id and version). A mapped field whose path reaches nothing is ``None``
(JSON ``null``, an empty CSV cell): the LA sees that the gateway holds no value rather than a missing column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import Change
from connectors.local_authority.paths import ElementPath, Scalar, parse_path


def compile_mapping(mapping: Mapping[str, str]) -> dict[str, ElementPath]:
    """Parse every path of a (validated) mapping once, keeping its order."""
    return {target: parse_path(path) for target, path in mapping.items()}


def document(change: Change, mapping: Mapping[str, ElementPath]) -> dict[str, Any]:
    """The flat document for one change (a deletion carries the envelope and empty fields)."""
    out: dict[str, Any] = {
        "resource_type": change.res_type,
        "resource_id": change.res_id,
        "version_id": change.version_id,
        "deleted": change.deleted,
    }
    for target, path in mapping.items():
        value: Scalar | None = path.value(change.resource)
        out[target] = value
    return out


def idempotency_key(change: Change) -> str:
    """What names this change at the destination: sending it twice must change nothing the second time."""
    return f"{change.res_type}/{change.res_id}/_history/{change.version_id}"
