"""Where changes go, now: the file's destinations, those made through the API, and live FHIR Subscriptions.

Every process (API, worker, relay) asks :meth:`Directory.current` each cycle. It compares two cheap version
figures (``sync_destination`` and the Subscriptions) with the last ones seen and reads everything again only when
they changed, so a destination made, changed or removed through the API, or a Subscription written, is seen
without a restart.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.access.policy import AccessPolicy
from gateway.settings import Settings
from gateway.store.repository import SqlFhirRepository
from gateway.sync import destination_store, subscriptions
from gateway.sync.destinations import Destination
from gateway.sync.relay import DestinationSource, Matcher
from gateway.sync.subscriptions import SubscriptionTarget


def _types(text: str) -> frozenset[str]:
    return frozenset(t.strip().lower() for t in text.split(",") if t.strip())


def access_policy(settings: Settings) -> AccessPolicy:
    """The access policy as the API applies it (for deciding what a Subscription's owner may be notified of)."""
    return AccessPolicy(
        agreements=_types(settings.sharing_agreements), break_glass_types=_types(settings.break_glass_types)
    )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The destinations at one moment, by name; the names removed through the API; the live Subscriptions."""

    destinations: dict[str, Destination]
    removed: frozenset[str] = frozenset()
    subscriptions: dict[str, SubscriptionTarget] = field(default_factory=dict)

    @property
    def all(self) -> tuple[Destination, ...]:
        return tuple(self.destinations.values())


class Directory:
    """The current destinations for one process, re-read when the database says they changed."""

    def __init__(self, engine: AsyncEngine, settings: Settings, file_destinations: tuple[Destination, ...]) -> None:
        self.engine = engine
        self.settings = settings
        self.file_destinations = file_destinations
        self.file_names = frozenset(d.name for d in file_destinations)
        self._version: tuple[object, ...] | None = None
        self._checked = 0.0  # time.monotonic() of the last look at the versions
        self._snapshot = Snapshot({d.name: d for d in file_destinations})

    async def recent(self, max_age: float) -> Snapshot:
        """The snapshot as of at most ``max_age`` seconds ago: what a worker needs to deliver a lane (a destination
        changed through the API is used within ``max_age``), without two version queries per task. The relay asks
        :meth:`current` instead: it must see a new destination before it relays the changes committed after it."""
        if self._version is not None and time.monotonic() - self._checked < max_age:
            return self._snapshot
        return await self.current()

    async def current(self) -> Snapshot:
        self._checked = time.monotonic()
        async with self.engine.connect() as conn:
            seen = (*await destination_store.version(conn), *await subscriptions.version(conn))
            if seen == self._version:
                return self._snapshot
            stored = await destination_store.read_all(conn)
            targets = await subscriptions.live_targets(conn, self.settings)
        by_name = {d.name: d for d in self.file_destinations}
        for d in stored.live:
            by_name.setdefault(d.name, d)  # the file wins a name clash (the API refuses one)
        for t in targets:
            by_name[t.destination.name] = t.destination
        self._snapshot = Snapshot(by_name, stored.removed, {t.destination.name: t for t in targets})
        self._version = seen
        return self._snapshot

    def relay_source(self) -> DestinationSource:
        """For :func:`gateway.sync.relay.run_relay`: the destinations now and the Subscriptions' matcher."""
        repo = SqlFhirRepository(self.engine)
        policy = access_policy(self.settings)

        async def source() -> tuple[Sequence[Destination], Matcher | None]:
            snapshot = await self.current()
            targets = tuple(snapshot.subscriptions.values())
            if not targets:
                return snapshot.all, None

            async def matcher(events: Sequence[Any]) -> dict[str, set[int]]:
                return await subscriptions.match(repo, policy, targets, events)

            return snapshot.all, matcher

        return source
