"""Run the MLLP listener as a process (``kwg mllp``): engine, inbox writer, cohort lookup, TLS, clean shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

from gateway.hl7v2.ack import AckIdentity
from gateway.hl7v2.cohort import CohortLookup, EveryoneInCohort, FhirCohortLookup
from gateway.hl7v2.inbox import HL7Inbox
from gateway.hl7v2.listener import ListenerConfig, MllpListener, tls_context
from gateway.settings import Settings
from gateway.store.db import create_engine


async def run_mllp(
    settings: Settings,
    host: str,
    port: int,
    *,
    cohort_filter: bool = True,
    announce: Callable[[str, int], None] | None = None,
    parent_pid: int | None = None,
) -> None:
    """Listen until SIGINT/SIGTERM. ``announce(host, port)`` is called once the socket is bound.

    With ``parent_pid`` (the listener started by ``kwg serve``), also stop when that process is gone: uvicorn
    re-raises the signal that stopped it, so the parent cannot always stop its child itself.
    """
    engine = create_engine(settings)
    inbox = HL7Inbox(engine, on_commit=_processing_nudge(settings))
    cohort: CohortLookup = FhirCohortLookup(engine) if cohort_filter else EveryoneInCohort()
    config = ListenerConfig(
        max_message_bytes=settings.mllp_max_message_bytes,
        idle_timeout=settings.mllp_idle_timeout,
        identity=AckIdentity(),
    )
    tls = None
    if settings.mllp_tls_cert is not None and settings.mllp_tls_key is not None:
        tls = tls_context(settings.mllp_tls_cert, settings.mllp_tls_key)
    listener = MllpListener(inbox, cohort, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if parent_pid is not None:
        watcher = asyncio.create_task(_stop_when_orphaned(parent_pid, stop))
    await inbox.start()
    server = await listener.serve(host, port, tls=tls)
    try:
        bound = server.sockets[0].getsockname()
        if announce is not None:
            announce(str(bound[0]), int(bound[1]))
        await stop.wait()
    finally:
        server.close()
        await listener.close_connections()
        await server.wait_closed()
        await inbox.stop()
        await engine.dispose()
        if parent_pid is not None:
            watcher.cancel()


async def _stop_when_orphaned(parent_pid: int, stop: asyncio.Event) -> None:
    while os.getppid() == parent_pid:
        await asyncio.sleep(0.5)
    stop.set()


def _processing_nudge(settings: Settings, *, every: float = 0.1) -> Callable[[int], None]:
    """After commits of new messages, ask a worker to process them: at most one request in flight and one every
    ``every`` seconds (a busy feed commits hundreds of times a second; one nudge covers them all). If the broker is
    down, the beat sweep asks instead."""
    from gateway.sync.worker import PROCESS_HL7, create_celery, send_quietly

    app = create_celery(settings)
    state = {"in_flight": False, "again": False, "last": 0.0}

    def fire() -> None:
        loop = asyncio.get_running_loop()
        state["in_flight"], state["again"] = True, False
        wait = max(0.0, every - (loop.time() - float(state["last"])))

        def send() -> None:
            future = loop.run_in_executor(None, send_quietly, app, PROCESS_HL7)
            future.add_done_callback(sent)

        loop.call_later(wait, send)

    def sent(_future: object) -> None:
        state["in_flight"], state["last"] = False, asyncio.get_event_loop().time()
        if state["again"]:
            fire()

    def on_commit(stored: int) -> None:
        if not stored:
            return
        if state["in_flight"]:
            state["again"] = True
            return
        fire()

    return on_commit
