"""The Celery side of the sync engine: the app, its thin tasks, and the per-process runtime they run in.

Tasks take ids (a destination name and a lane number), re-read everything from the database, and are safe to run
twice (``acks_late``; a lane lease keeps two workers off one lane). The app is built by :func:`create_celery` from
settings (nothing at import time): ``kwg worker`` and ``kwg beat`` build it, and so do the relay and the API when they
send tasks.

Broker: Redis in production (``KWG_BROKER_URL``). With none configured, kombu's filesystem transport under
``KWG_HOME/broker``: no server, real Celery semantics, several processes on one machine (docs/decisions/0006). The
database holds the deliveries, so a message the embedded broker loses costs a delay until the next sweep, not a
change.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from celery import Celery
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.base import PushConnector
from connectors.fhir.connector import FhirConnector
from connectors.local_authority.connector import LocalAuthorityConnector
from connectors.registry import build_push_connector
from gateway.export.requeue import requeue_stalled
from gateway.hl7v2.alerts import AlertSettings
from gateway.origins import connector_origin
from gateway.register.apply import RegisterRules
from gateway.register.config import DEFAULT_RULES, load_rules
from gateway.request_ids import carry_into_celery
from gateway.settings import Settings, load_settings
from gateway.store.db import create_engine
from gateway.store.repository import SqlFhirRepository
from gateway.sync import deliveries, destination_store, subscriptions
from gateway.sync.deliver import DrainReport, drain_lane
from gateway.sync.destinations import Destination, load_destinations
from gateway.sync.directory import Directory, Snapshot
from gateway.sync.pull import PullReport, pull
from gateway.sync.readback import read_back_recommendations
from gateway.validation import validate_resource

log = logging.getLogger(__name__)
T = TypeVar("T")

DELIVER_LANE = "kwg.deliver_lane"
SWEEP = "kwg.sweep"
SWEEP_OVERDUE = "kwg.sweep_overdue"
PULL = "kwg.pull"
PROCESS_HL7 = "kwg.process_hl7"
BULK_EXPORT = "kwg.bulk_export"
HL7_LANE = ("hl7-inbox", 0)


def broker_options(settings: Settings) -> dict[str, Any]:
    if settings.broker_url is None:
        folder = settings.embedded_broker_folder
        folder.mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "polling_interval": 0.05,
            "store_processed": False,
        }
    if settings.broker_url.startswith("redis"):
        # A task whose worker died unacknowledged is delivered again after this long (the sweep is faster still).
        return {"visibility_timeout": 300, "socket_connect_timeout": 2, "socket_timeout": 5}
    return {}


def create_celery(settings: Settings | None = None) -> Celery:
    """The Celery app with the sync engine's tasks registered."""
    settings = settings or load_settings()
    app = Celery("kwg", broker=settings.resolved_broker_url, set_as_current=False)
    carry_into_celery()  # a task started while a request is handled logs that request's id
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options=broker_options(settings),
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        beat_schedule={
            "sweep": {"task": SWEEP, "schedule": settings.sweep_interval},
            "overdue-tasks": {"task": SWEEP_OVERDUE, "schedule": 3600.0},
            **{
                f"pull-{d.name}": {"task": PULL, "schedule": d.pull_every_seconds, "args": [d.name]}
                for d in load_destinations(settings.destinations_file)
                if d.pull_every_seconds
            },
        },
    )
    app.conf.kwg_settings = settings

    @app.task(name=DELIVER_LANE)  # type: ignore[untyped-decorator]
    def deliver_lane(destination: str, lane: int) -> None:
        report = runtime(settings).deliver(destination, lane)
        if report is not None and report.retry_in is not None:
            nudge(app, [(destination, lane)], countdown=report.retry_in)

    @app.task(name=SWEEP)  # type: ignore[untyped-decorator]
    def sweep() -> None:
        nudge(app, runtime(settings).run(deliveries.lanes_with_work(runtime(settings).engine)))
        send_quietly(app, PROCESS_HL7)
        # Export jobs whose message never reached a worker (or whose worker died) are queued again.
        runtime(settings).run(
            requeue_stalled(
                runtime(settings).engine,
                lambda job: send_quietly(app, BULK_EXPORT, job),
                after=settings.export_stalled_seconds,
            )
        )

    @app.task(name=PROCESS_HL7)  # type: ignore[untyped-decorator]
    def process_hl7() -> None:
        handled = runtime(settings).process_hl7()
        if handled:
            log.info("processed %d HL7 v2 message(s)", handled)

    @app.task(name=PULL)  # type: ignore[untyped-decorator]
    def pull_changes(destination: str) -> None:
        report = runtime(settings).pull(destination)
        if report is not None:
            log.info("pulled %d resource(s) from %s", report.resources, destination)

    @app.task(name=SWEEP_OVERDUE)  # type: ignore[untyped-decorator]
    def sweep_overdue() -> None:
        from datetime import UTC, datetime

        from gateway.register.sweep import sweep_overdue_tasks

        rt = runtime(settings)
        flagged, cleared = rt.run(sweep_overdue_tasks(SqlFhirRepository(rt.engine), datetime.now(UTC).date()))
        log.info("overdue sweep: %d Task(s) flagged, %d cleared", flagged, cleared)

    @app.task(name=BULK_EXPORT)  # type: ignore[untyped-decorator]
    def bulk_export(job_id: str) -> None:
        from gateway.export.run import run_job

        log.info("bulk export %s: %s", job_id, run_job(settings, job_id))

    return app


def send_quietly(app: Celery, task: str, *args: str) -> bool:
    """Queue a task (with string arguments, if any); a broker that is down is logged, not raised."""
    try:
        app.send_task(task, args=list(args), retry=False)
        return True
    except Exception as exc:  # kombu raises several types for an unreachable broker; the sweep will retry
        log.warning("could not queue %s: %s", task, type(exc).__name__)
        return False


def nudge(app: Celery, lanes: list[tuple[str, int]] | set[tuple[str, int]], *, countdown: float | None = None) -> int:
    """Ask a worker to drain these lanes; a broker that is down is logged, not raised (the sweep catches up)."""
    sent = 0
    for destination, lane in sorted(lanes):
        try:
            app.send_task(DELIVER_LANE, args=[destination, lane], countdown=countdown, retry=False)
            sent += 1
        except Exception as exc:  # kombu raises several types for an unreachable broker; the sweep will retry
            log.warning("could not queue delivery of %s lane %d: %s", destination, lane, type(exc).__name__)
            break
    return sent


#: Seconds a worker delivers with the destinations it last read before it looks again (API changes reach the
#: worker within this; the relay looks every cycle).
DIRECTORY_MAX_AGE = 1.0


@dataclass
class Runtime:
    """One per worker process: an event loop, the database engine, the destinations and their connectors."""

    settings: Settings
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    pid: int = field(default_factory=os.getpid)
    _engine: AsyncEngine | None = None
    _directory: Directory | None = None
    _connectors: dict[str, PushConnector] = field(default_factory=dict)
    _built_for: dict[str, Destination] = field(default_factory=dict)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = create_engine(self.settings)
        return self._engine

    @property
    def directory(self) -> Directory:
        if self._directory is None:
            self._directory = Directory(self.engine, self.settings, load_destinations(self.settings.destinations_file))
        return self._directory

    def snapshot(self) -> Snapshot:
        """The destinations now: the file's, the API's and live Subscriptions (re-read when they changed)."""
        return self.run(self.directory.current())

    @property
    def destinations(self) -> dict[str, Destination]:
        return self.snapshot().destinations

    def connector(self, destination: Destination) -> PushConnector:
        if self._built_for.get(destination.name) != destination:  # new, or changed through the API
            old = self._connectors.pop(destination.name, None)
            if old is not None:
                self.run(old.aclose())
            self._connectors[destination.name] = build_push_connector(
                destination.connector, destination.connector_settings()
            )
            self._built_for[destination.name] = destination
        return self._connectors[destination.name]

    def deliver(self, name: str, lane: int) -> DrainReport | None:
        snapshot = self.run(self.directory.recent(DIRECTORY_MAX_AGE))
        destination = snapshot.destinations.get(name)
        if destination is None:  # new since the last look (a Subscription just made)? Look again before deciding
            snapshot = self.run(self.directory.current())
            destination = snapshot.destinations.get(name)
        if destination is None:
            self._undeliverable(snapshot, name, lane)
            return None
        repo = SqlFhirRepository(self.engine)
        owner = f"{socket.gethostname()}:{os.getpid()}"
        report = self.run(
            drain_lane(
                self.engine,
                repo,
                destination,
                self.connector(destination),
                lane,
                owner=owner,
                lease_seconds=self.settings.lane_lease_seconds,
            )
        )
        target = snapshot.subscriptions.get(name)
        if target is not None:
            error_after = self.settings.subscription_error_after_attempts
            self.run(subscriptions.after_drain(self.engine, repo, target, report, error_after))
        return report

    def _undeliverable(self, snapshot: Snapshot, name: str, lane: int) -> None:
        """Deliveries for a destination that is gone: dead letters when it was removed through the API or is a
        Subscription turned off or deleted; otherwise they wait until it is configured again."""
        if name in snapshot.removed:
            reason = destination_store.REMOVED
        elif name.startswith(destination_store.SUBSCRIPTION_PREFIX):
            reason = "subscription off or deleted"
        else:
            log.error("deliveries for unknown destination %s (lane %d) wait until it is configured again", name, lane)
            return
        dead = self.run(destination_store.dead_letter_lane(self.engine, name, lane, reason))
        log.info("destination %s lane %d: %d pending delivery(ies) dead-lettered (%s)", name, lane, dead, reason)

    def pull(self, name: str) -> PullReport | None:
        destination = self.destinations.get(name)
        if destination is None:
            return None
        connector = self.connector(destination)
        repo = SqlFhirRepository(self.engine, validator=validate_resource)
        ods = destination.options.get("ods_code")
        origin = connector_origin(
            name, destination.connector, str(destination.endpoint), organisation=ods if isinstance(ods, str) else None
        )
        if isinstance(connector, LocalAuthorityConnector):
            updated = self.run(read_back_recommendations(repo, connector, origin=origin))
            return PullReport(resources=updated)
        if not isinstance(connector, FhirConnector):
            log.error("destination %s: connector %s cannot pull", name, destination.connector)
            return None
        return self.run(pull(self.engine, repo, name, connector, destination.pull_types, origin=origin))

    def process_hl7(self) -> int:
        """Process stored HL7 v2 messages in order under the inbox's lease; how many were handled."""
        from gateway.hl7v2.check import check_text
        from gateway.hl7v2.log import StoredMessage, annotate, process_pending
        from gateway.hl7v2.processing import Hl7Processor

        owner = f"{socket.gethostname()}:{os.getpid()}"
        lane, number = HL7_LANE
        handled = 0

        async def drain() -> None:
            nonlocal handled
            if not await deliveries.claim_lane(self.engine, lane, number, owner, self.settings.lane_lease_seconds):
                return
            try:
                processor = Hl7Processor(SqlFhirRepository(self.engine, validator=validate_resource), *self.hl7())

                async def checked(message: StoredMessage) -> None:
                    # hl7apy earns its place here: a structure check of each cohort message (2 % of a feed), kept
                    # in the message log; it never stops the processing (real feeds bend the standard).
                    findings = await asyncio.to_thread(check_text, message.raw)
                    await annotate(self.engine, message.id, "structure", findings)
                    await processor(message)

                while n := await process_pending(self.engine, checked, limit=100):
                    handled += n
                    await deliveries.claim_lane(self.engine, lane, number, owner, self.settings.lane_lease_seconds)
            finally:
                await deliveries.release_lane(self.engine, lane, number, owner)

        self.run(drain())
        return handled

    def hl7(self) -> tuple[RegisterRules, AlertSettings]:
        s = self.settings
        rules = RegisterRules(load_rules(s.rules_file) if s.rules_file else DEFAULT_RULES)

        def codes(text: str) -> frozenset[str]:
            return frozenset(c.strip() for c in text.split(",") if c.strip())

        alerts = AlertSettings(
            wards=codes(s.hl7_mental_health_wards),
            services=codes(s.hl7_mental_health_services),
            senders=codes(s.hl7_mental_health_senders),
            discharge_rating=rules.config.post_discharge_rating,
            discharge_review_days=rules.config.post_discharge_minimum_weeks * 7,
        )
        return rules, alerts


_RUNTIME: Runtime | None = None


def runtime(settings: Settings) -> Runtime:
    """This process's runtime (made on first use, so a forked worker child makes its own)."""
    global _RUNTIME
    if _RUNTIME is None or _RUNTIME.pid != os.getpid():
        _RUNTIME = Runtime(settings)
    return _RUNTIME
