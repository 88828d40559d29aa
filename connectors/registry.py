"""Which connector serves a destination's ``connector`` kind, and building one from a destination's settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from connectors.base import ConfigurationError, PushConnector
from connectors.education.registry_entry import ENTRIES as EDUCATION_ENTRIES
from connectors.fhir.config import FhirConfig
from connectors.fhir.connector import FhirConnector
from connectors.local_authority.registry_entry import ENTRIES as LA_ENTRIES
from connectors.resthook.connector import RestHookConnector
from connectors.resthook.connector import build as build_rest_hook

Builder = Callable[[dict[str, Any], httpx.AsyncBaseTransport | None], PushConnector]


def _fhir(settings: dict[str, Any], transport: httpx.AsyncBaseTransport | None) -> PushConnector:
    return FhirConnector(FhirConfig.model_validate(settings), transport=transport)


PUSH_CONNECTORS: dict[str, Builder] = {
    "fhir": _fhir,
    **LA_ENTRIES,
    **EDUCATION_ENTRIES,
    RestHookConnector.kind: build_rest_hook,
}


def build_push_connector(
    kind: str, settings: dict[str, Any], *, transport: httpx.AsyncBaseTransport | None = None
) -> PushConnector:
    """The connector for ``kind`` configured with ``settings`` (endpoint, secrets...); ConfigurationError if unknown."""
    try:
        builder = PUSH_CONNECTORS[kind]
    except KeyError:
        known = ", ".join(sorted(PUSH_CONNECTORS))
        raise ConfigurationError(f"unknown connector {kind!r} (known: {known})") from None
    return builder(settings, transport)
