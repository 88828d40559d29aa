"""``kwg validate FILE``: read a JSON (or FHIR XML) file and validate it like ``$validate`` does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson

from gateway.conformance.elements import Navigator
from gateway.conformance.fhirxml import FhirXmlConverter, FhirXmlError
from gateway.conformance.loader import default_definitions
from gateway.errors import Issue
from gateway.validation import validate_fully


def read_resource(path: Path) -> tuple[dict[str, object] | None, list[Issue]]:
    raw = path.read_bytes()
    if raw.lstrip().startswith(b"<"):
        try:
            return FhirXmlConverter(Navigator(default_definitions())).convert(raw), []
        except (FhirXmlError, SyntaxError) as exc:
            return None, [Issue("structure", f"not a FHIR XML resource: {exc}", (), "fatal")]
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return None, [Issue("structure", f"invalid JSON: {exc}", (), "fatal")]
    if not isinstance(data, dict):
        return None, [Issue("structure", "the JSON is not an object", (), "fatal")]
    return data, []


def validate_file(path: Path, profiles: Sequence[str] = ()) -> list[Issue]:
    resource, problems = read_resource(path)
    if resource is None:
        return problems
    return validate_fully(resource, profiles)
