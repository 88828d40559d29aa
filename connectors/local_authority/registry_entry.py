"""Builders for ``connectors.registry.PUSH_CONNECTORS``: the LA JSON push and the LA CSV file drop.

``connectors/registry.py`` adds them as ``{"local-authority-json": build, "local-authority-csv": build_csv}``
(or ``**ENTRIES``). A bad configuration raises ConfigurationError, as the registry's other builders do.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import ValidationError

from connectors.base import ConfigurationError, PushConnector
from connectors.local_authority.config import LocalAuthorityConfig, LocalAuthorityCsvConfig
from connectors.local_authority.connector import LocalAuthorityConnector
from connectors.local_authority.csv_drop import LocalAuthorityCsvConnector


def build(settings: dict[str, Any], transport: httpx.AsyncBaseTransport | None) -> PushConnector:
    """The LA JSON connector ("local-authority-json") from a destination's settings."""
    try:
        config = LocalAuthorityConfig.model_validate(settings)
    except ValidationError as exc:
        raise ConfigurationError(f"local-authority-json: {exc.error_count()} setting(s) invalid: {exc}") from None
    return LocalAuthorityConnector(config, transport=transport)


def build_csv(settings: dict[str, Any], transport: httpx.AsyncBaseTransport | None) -> PushConnector:
    """The LA CSV file drop ("local-authority-csv"); ``transport`` is unused (no HTTP)."""
    try:
        config = LocalAuthorityCsvConfig.model_validate(settings)
    except ValidationError as exc:
        raise ConfigurationError(f"local-authority-csv: {exc.error_count()} setting(s) invalid: {exc}") from None
    return LocalAuthorityCsvConnector(config)


ENTRIES = {LocalAuthorityConnector.kind: build, LocalAuthorityCsvConnector.kind: build_csv}
