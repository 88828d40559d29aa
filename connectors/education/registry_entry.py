"""Builder for ``connectors.registry.PUSH_CONNECTORS``: ``"education-json": build``."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import ValidationError

from connectors.base import ConfigurationError, PushConnector
from connectors.education.config import EducationConfig
from connectors.education.connector import EducationConnector


def build(settings: dict[str, Any], transport: httpx.AsyncBaseTransport | None) -> PushConnector:
    """The education JSON connector ("education-json") from a destination's settings."""
    try:
        config = EducationConfig.model_validate(settings)
    except ValidationError as exc:
        raise ConfigurationError(f"education-json: {exc.error_count()} setting(s) invalid: {exc}") from None
    return EducationConnector(config, transport=transport)


ENTRIES = {EducationConnector.kind: build}
