"""Send FHIR R4 rest-hook notifications: one HTTP request per change, with the Subscription's channel headers.

R4 (subscription.html, rest-hook): without a payload the notification is a ``POST`` to the endpoint with no body
(a ping: nothing about the resource is sent; the ``X-Subscription`` header names the Subscription); with payload
``application/fhir+json`` the endpoint is a FHIR base and the resource is sent as ``PUT {endpoint}/{type}/{id}``.
Deliveries come one at a time (batch size 1), so a retry never repeats another notification. A 2xx is delivered;
5xx, 408, 429 and network failures are transient (retried with backoff); another 4xx is a refusal (a dead letter).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import httpx
import orjson
from pydantic import ValidationError

from connectors.base import (
    Change,
    ConfigurationError,
    ConnectorConfig,
    PermanentError,
    PushConnector,
    PushOutcome,
    PushReport,
    classify,
    send,
)


class RestHookConfig(ConnectorConfig):
    subscription: str  # Subscription/<id>
    payload: str | None = None
    headers: tuple[str, ...] = ()


def header_pairs(headers: Sequence[str]) -> list[tuple[str, str]]:
    """``Name: value`` strings as (name, value) pairs."""
    pairs = []
    for header in headers:
        name, _, value = header.partition(":")
        pairs.append((name.strip(), value.strip()))
    return pairs


class RestHookConnector:
    """Notifications for one Subscription. ``transport`` is for tests."""

    kind: ClassVar[str] = "rest-hook"

    def __init__(self, config: RestHookConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self._client = httpx.AsyncClient(timeout=config.timeout_seconds, transport=transport)

    def request(self, change: Change) -> httpx.Request:
        headers = [*header_pairs(self.config.headers), ("X-Subscription", self.config.subscription)]
        endpoint = str(self.config.endpoint).rstrip("/")
        if self.config.payload is None or change.resource is None:
            return self._client.build_request("POST", endpoint, headers=headers)
        body = orjson.dumps(change.resource)
        headers.append(("Content-Type", self.config.payload))
        url = f"{endpoint}/{change.res_type}/{change.res_id}"
        return self._client.build_request("PUT", url, headers=headers, content=body)

    async def push(self, changes: Sequence[Change]) -> PushReport:
        report = PushReport()
        for change in changes:
            response = await send(self._client, self.request(change))
            error = classify(response)
            if isinstance(error, PermanentError):
                report.outcomes.append(PushOutcome(change.delivery_id, False, error.status, error.detail or str(error)))
            elif error is not None:
                raise error  # transient: nothing after it is sent (batch size 1: nothing before it either)
            else:
                report.outcomes.append(PushOutcome(change.delivery_id, True, response.status_code))
        return report

    async def check(self) -> None:
        return None  # a subscriber's endpoint need not answer anything but notifications

    async def aclose(self) -> None:
        await self._client.aclose()


def build(settings: dict[str, Any], transport: httpx.AsyncBaseTransport | None) -> PushConnector:
    try:
        config = RestHookConfig.model_validate(settings)
    except ValidationError as exc:
        raise ConfigurationError(f"rest-hook: {exc.error_count()} setting(s) invalid: {exc}") from None
    return RestHookConnector(config, transport=transport)
