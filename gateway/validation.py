"""The validator the repository runs on every write: FHIR R4 structure now, our profiles later."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.errors import Issue
from mappings.fhir import validate_structure


def validate_resource(resource: dict[str, Any]) -> Sequence[Issue]:
    return [Issue(p.code, p.message, (p.path,)) for p in validate_structure(resource)]
