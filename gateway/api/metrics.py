"""Prometheus ``/metrics``: HTTP latency by route, deliveries by outcome and queue depth, HL7 v2 message counts.

HTTP figures are per process (each uvicorn worker answers for itself; scrape each or run one worker per container).
Delivery and HL7 figures are read from the database at scrape time, so every process reports the same totals.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram, generate_latest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.hl7v2 import log as hl7_log
from gateway.sync import deliveries

router = APIRouter(tags=["Operations"])


class Metrics:
    """One registry per app (tests build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "kwg_http_request_duration_seconds",
            "HTTP request latency by route template, method and status",
            ("route", "method", "status"),
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.deliveries = Gauge(
            "kwg_deliveries",
            "Deliveries by destination and status (pending = queue depth)",
            ("destination", "status"),
            registry=self.registry,
        )
        self.hl7 = Gauge(
            "kwg_hl7_messages",
            "HL7 v2 messages received, by sender, type and outcome (stored, duplicate, not_in_cohort, rejected)",
            ("sending_facility", "message_type", "outcome"),
            registry=self.registry,
        )


class RequestTimer:
    """ASGI middleware: time every request and label it with its route template (never the raw path: ids)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.latency.labels(template, scope.get("method", ""), str(status)).observe(
                time.perf_counter() - started
            )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    found: Metrics = request.app.state.metrics
    engine = request.app.state.engine
    found.deliveries.clear()
    for destination, by_status in (await deliveries.counts(engine)).items():
        for status, count in by_status.items():
            found.deliveries.labels(destination, status).set(count)
    found.hl7.clear()
    totals: dict[tuple[str, str, str], int] = {}
    for _day, facility, message_type, outcome, count in await hl7_log.feed_counts(engine):
        key = (facility, message_type, outcome)
        totals[key] = totals.get(key, 0) + count
    for (facility, message_type, outcome), count in totals.items():
        found.hl7.labels(facility, message_type, outcome).set(count)
    return Response(generate_latest(found.registry), media_type=CONTENT_TYPE_LATEST)
