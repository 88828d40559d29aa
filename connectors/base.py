"""The typed connector interface: what every connector to an outside system offers, and how it fails.

A connector is a thin client for one kind of system (an NHS FHIR server, PDS, a local authority's case system, a
school). It receives resources and returns results; it never touches the store (the Celery tasks wire the pieces,
see ``connectors.tasks``). Each has a pydantic config (secrets as ``SecretStr``, never logged), an httpx client
built with an injectable transport (tests use ``httpx.MockTransport`` or a fake server over real HTTP), and a fake.

Errors, the one hierarchy a delivery's fate is decided by::

    ConnectorError
    ├── TransientError          retry later with backoff (timeouts, connection errors, 5xx, 429)
    │                           ``retry_after``: seconds the destination asked for (Retry-After), if any
    └── PermanentError          do not retry: the destination refused this content (4xx other than 408/429);
                                the delivery goes to the dead-letter list with ``reason``
    ConfigurationError          the connector cannot be built (unknown kind, missing secret, bad endpoint)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, HttpUrl


class ConnectorError(Exception):
    """Base of the errors a connector raises."""


class TransientError(ConnectorError):
    """Worth retrying: the destination is down, slow, overloaded or asked us to wait."""

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class PermanentError(ConnectorError):
    """Not worth retrying: the destination refused the content; an operator must look (dead letter)."""

    def __init__(self, message: str, *, status: int | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class ConfigurationError(ConnectorError):
    """A destination's configuration cannot work (unknown connector, missing secret, bad endpoint)."""


class ConnectorConfig(BaseModel):
    """Settings every connector has; each connector's config extends it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint: HttpUrl
    timeout_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class Change:
    """One change to send: a resource version (or a deletion), already reduced to what the recipient may see."""

    delivery_id: int
    res_type: str
    res_id: str
    version_id: int
    resource: dict[str, Any] | None  # None: the resource was deleted
    patient_id: str | None = None

    @property
    def deleted(self) -> bool:
        return self.resource is None


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What the destination did with one change: accepted, or refused for good (with why)."""

    delivery_id: int
    accepted: bool
    status: int | None = None
    detail: str | None = None


@dataclass(slots=True)
class PushReport:
    """The outcome of one push: one entry per change, in the order sent."""

    outcomes: list[PushOutcome] = field(default_factory=list)

    @property
    def refused(self) -> list[PushOutcome]:
        return [o for o in self.outcomes if not o.accepted]


class PushConnector(Protocol):
    """A connector that sends changes to a destination."""

    kind: ClassVar[str]

    async def push(self, changes: Sequence[Change]) -> PushReport:
        """Send the changes in order. Raises TransientError when nothing can be known to have arrived (retry all);
        otherwise reports per change (a refused one is dead-lettered; the rest are done)."""
        ...

    async def check(self) -> None:
        """Raise ConfigurationError or TransientError when the destination cannot be reached (start-up check)."""
        ...

    async def aclose(self) -> None: ...


def classify(response: httpx.Response) -> ConnectorError | None:
    """The error an HTTP answer means for a delivery, or None for success (2xx)."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    if status in (408, 429) or status >= 500:
        return TransientError(
            f"{response.request.method} {response.request.url.path}: {status}",
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
            status=status,
        )
    return PermanentError(
        f"{response.request.method} {response.request.url.path}: {status}", status=status, detail=response.text[:2000]
    )


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds, or an HTTP date (RFC 9110 section 10.2.3)."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():  # ASCII digits only: str.isdigit also accepts "²" and "٣", which are not delta-seconds
        return float(text) if text.isascii() else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": a time in UTC whose zone the sender did not know (RFC 5322)
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


async def send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """Send a request, turning transport failures (timeouts, refused connections) into TransientError."""
    try:
        return await client.send(request)
    except httpx.TimeoutException as exc:
        raise TransientError(f"{request.method} {request.url.path}: timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise TransientError(f"{request.method} {request.url.path}: {type(exc).__name__}") from exc
