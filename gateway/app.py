"""The application factory. Nothing is created at import time."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway import __version__
from gateway.access.policy import AccessPolicy
from gateway.api import admin, admin_destinations, everything, fhir, health, hl7, metadata, operations, outcomes, v1
from gateway.api import export as bulk_export
from gateway.api import summary as summary_api
from gateway.api.limits import BodyLimit
from gateway.api.metrics import Metrics, RequestTimer
from gateway.api.metrics import router as metrics_router
from gateway.api.negotiation import FormatNegotiation
from gateway.api.security_headers import SecurityHeaders
from gateway.audit.trail import AuditTrail
from gateway.console import routes as console
from gateway.logs import configure_logging
from gateway.ratelimit import RateLimiter
from gateway.register.apply import RegisterRules
from gateway.register.config import DEFAULT_RULES, load_rules
from gateway.request_ids import RequestIds
from gateway.security import routes as security_routes
from gateway.security.keys import load_signing_key
from gateway.security.oidc import external_tokens_for
from gateway.security.verified import VerifiedTokens
from gateway.settings import Settings, load_settings
from gateway.store.db import create_engine
from gateway.store.repository import SqlFhirRepository
from gateway.store.timeutil import now_us, to_instant
from gateway.sync.destinations import load_destinations
from gateway.validation import validate_resource

log = logging.getLogger(__name__)


def settle_memory() -> None:
    """After start-up, move what is loaded (models, registries, profiles) out of the garbage collector's way.

    Everything alive now lives as long as the process; ``gc.freeze`` stops full collections from walking it
    again and again, which showed as latency spikes under load. Young collections run less often too: a request
    allocates many short-lived objects that reference counting frees anyway.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings)
    engine = create_engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settle_memory()
        await app.state.audit.start()
        try:
            yield
        finally:
            await app.state.audit.stop()
            await engine.dispose()

    app = FastAPI(
        title="Keyworking Gateway",
        version=__version__,
        description="FHIR R4 store and interoperability gateway for keyworking services in England.",
        lifespan=lifespan,
        separate_input_output_schemas=False,  # one schema per record, named as the record (Person, not Person-Input)
        # Off unless asked for: when on, every request consults the OpenTelemetry providers.
        telemetry={"tracing": settings.telemetry, "metrics": settings.telemetry, "logs": settings.telemetry},
    )
    app.state.settings = settings
    if settings.auth_on:
        app.state.signing_key = load_signing_key(settings)  # production refuses to start without its key
        app.state.external_tokens = external_tokens_for(settings)
        app.state.verified_tokens = VerifiedTokens()
    else:
        log.warning("KWG_AUTH=off: authentication is OFF; every request is the development caller (development only)")
    app.state.started_at = to_instant(now_us())
    app.state.engine = engine
    app.state.destinations = load_destinations(settings.destinations_file)
    app.state.register_rules = RegisterRules(load_rules(settings.rules_file) if settings.rules_file else DEFAULT_RULES)
    app.state.repository = SqlFhirRepository(
        engine,
        validator=validate_resource,
        default_count=settings.default_page_size,
        max_count=settings.max_page_size,
    )
    app.state.audit = AuditTrail(lambda: app.state.repository, chained=settings.audit_hash_chain)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
    app.state.access = AccessPolicy(
        agreements=_types(settings.sharing_agreements), break_glass_types=_types(settings.break_glass_types)
    )
    outcomes.install(app)
    app.add_middleware(FormatNegotiation)
    app.state.metrics = Metrics()
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestTimer, metrics=app.state.metrics)
    app.add_middleware(RequestIds)  # outermost: every log line of the request, and the tasks it starts, carry it
    app.include_router(metadata.router)
    app.include_router(operations.router)  # before fhir.router: /{type}/$validate is not an id
    app.include_router(everything.router)
    app.include_router(summary_api.router)  # before fhir.router: /Patient/{id}/$summary is an operation
    app.include_router(bulk_export.router)  # before fhir.router: /$export and /Patient/$export are not ids
    app.include_router(fhir.router)
    app.include_router(v1.router)
    app.include_router(admin.router)
    app.include_router(admin_destinations.router)  # POST/PUT/DELETE /admin/destinations
    app.include_router(hl7.router)
    app.include_router(health.router)
    app.include_router(metrics_router)
    app.include_router(security_routes.router)
    console.install(app, settings)
    return app


def _types(text: str) -> frozenset[str]:
    return frozenset(t.strip().lower() for t in text.split(",") if t.strip())


def create_app_from_env() -> FastAPI:
    """Entry point for ``uvicorn --factory`` (several worker processes each build their own app)."""
    return create_app(load_settings())
