"""``kwg worker``, ``kwg beat``, ``kwg relay``, ``kwg deliveries ...`` and ``kwg destinations check``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from gateway.settings import Settings, load_settings
from gateway.sync.destinations import Destination, DestinationConfigError, load_destinations

deliveries_app = typer.Typer(help="The delivery log: list, inspect and replay deliveries.", no_args_is_help=True)
destinations_app = typer.Typer(help="Configured destinations.", no_args_is_help=True)


def checked_destinations(settings: Settings) -> tuple[Destination, ...]:
    """The destinations file, or exit 2 with one line per problem."""
    try:
        return load_destinations(settings.destinations_file)
    except DestinationConfigError as exc:
        for problem in exc.problems:
            typer.echo(f"configuration error: KWG_DESTINATIONS_FILE: {problem}", err=True)
        raise typer.Exit(2) from None


def _check_secrets(destinations: tuple[Destination, ...]) -> None:
    problems = []
    for destination in destinations:
        try:
            destination.bearer_token()
            destination.api_key()
        except DestinationConfigError as exc:
            problems += exc.problems
    from connectors.registry import PUSH_CONNECTORS

    known = ", ".join(sorted(PUSH_CONNECTORS))
    problems += [
        f"destination {d.name}: connector: unknown connector {d.connector!r} (known: {known})"
        for d in destinations
        if d.connector not in PUSH_CONNECTORS
    ]
    if problems:
        for problem in problems:
            typer.echo(f"configuration error: KWG_DESTINATIONS_FILE: {problem}", err=True)
        raise typer.Exit(2)


def worker(
    concurrency: int = typer.Option(2, min=1, help="Delivery processes (prefork) or threads"),
    beat: bool = typer.Option(False, help="Also run the beat scheduler in this process (one per deployment)"),
    relay: bool = typer.Option(True, help="Also run the outbox relay (a child process; one relay works at a time)"),
    pool: str = typer.Option("prefork", help="Celery pool: prefork, threads or solo"),
    loglevel: str = typer.Option("INFO", help="Celery log level"),
    parent: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Run a Celery worker that delivers changes to destinations (and, by default, the outbox relay)."""
    from gateway.sync.worker import create_celery

    settings = load_settings()
    _log_as_the_gateway(settings, loglevel)
    destinations = checked_destinations(settings)
    _check_secrets(destinations)
    _warn_unreachable(destinations)
    app = create_celery(settings)
    relay_child = _start_child(["relay", "--parent", str(os.getpid())]) if relay else None
    if parent is not None:
        _exit_with_parent(parent)
    argv = [
        "worker",
        f"--concurrency={concurrency}",
        f"--pool={pool}",
        f"--loglevel={loglevel}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    if beat:
        argv += ["--beat", f"--schedule={settings.home / 'beat-schedule'}"]
    try:
        app.worker_main(argv)
    finally:
        if relay_child is not None:
            _stop(relay_child)


def _log_as_the_gateway(settings: Settings, celery_level: str) -> None:
    """The worker's and beat's log lines are the gateway's (KWG_LOG_LEVEL, JSON when KWG_LOG_JSON, request ids,
    NHS numbers masked); Celery's own logger keeps the level given on the command line."""
    from celery import signals

    from gateway.logs import configure_logging

    def set_up(**_: object) -> None:
        configure_logging(settings)
        logging.getLogger("celery").setLevel(celery_level.upper())

    signals.setup_logging.connect(set_up, weak=False, dispatch_uid="kwg-logging")


def _warn_unreachable(destinations: tuple[Destination, ...]) -> None:
    """At start-up, say clearly which destinations do not answer (deliveries to them wait and retry)."""
    from connectors.base import ConnectorError
    from connectors.registry import build_push_connector

    async def run() -> None:
        for d in destinations:
            config = d.connector_settings() | {"timeout_seconds": min(d.timeout_seconds, 5)}
            connector = build_push_connector(d.connector, config)
            try:
                await connector.check()
            except ConnectorError as exc:
                typer.echo(
                    f"warning: destination {d.name} is unreachable at start ({exc}); its deliveries wait and retry",
                    err=True,
                )
            finally:
                await connector.aclose()

    asyncio.run(run())


def beat(loglevel: str = typer.Option("INFO", help="Celery log level")) -> None:
    """Run the beat scheduler: the sweep that re-queues lanes with due deliveries (one per deployment)."""
    from gateway.sync.worker import create_celery

    settings = load_settings()
    _log_as_the_gateway(settings, loglevel)
    settings.home.mkdir(parents=True, exist_ok=True)
    create_celery(settings).start(["beat", f"--loglevel={loglevel}", f"--schedule={settings.home / 'beat-schedule'}"])


def relay(parent: Annotated[int | None, typer.Option(hidden=True)] = None) -> None:
    """Relay the outbox: turn committed changes into deliveries and queue them (safe to run on several hosts)."""
    from gateway.store.db import create_engine
    from gateway.sync.directory import Directory
    from gateway.sync.relay import run_relay
    from gateway.sync.worker import create_celery, nudge

    settings = load_settings()
    destinations = checked_destinations(settings)
    app = create_celery(settings)

    async def run() -> None:
        engine = create_engine(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        watcher = asyncio.create_task(_watch_parent(parent, stop)) if parent is not None else None
        try:
            await run_relay(
                engine,
                destinations,
                lambda lanes: nudge(app, lanes),
                interval=settings.relay_interval,
                stop=stop,
                source=Directory(engine, settings, destinations).relay_source(),  # API destinations, Subscriptions
            )
        finally:
            if watcher is not None:
                watcher.cancel()
            await engine.dispose()

    typer.echo(f"relaying the outbox to {len(destinations)} destination(s)")
    asyncio.run(run())


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    while os.getppid() == parent:
        await asyncio.sleep(0.5)
    stop.set()


def _exit_with_parent(parent: int) -> None:
    """Stop this process when ``parent`` is gone (a worker started by ``kwg serve``)."""
    import threading

    def watch() -> None:
        import time

        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True, name="kwg-parent-watch").start()


def _start_child(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", *args])


def _stop(child: subprocess.Popen[bytes]) -> None:
    from gateway.cli import stop_child

    stop_child(child)


def _when(us: int | None) -> str:
    if us is None:
        return "-"
    return datetime.fromtimestamp(us / 1_000_000, UTC).strftime("%Y-%m-%d %H:%M:%S")


@deliveries_app.command("list")
def list_deliveries(
    status: str | None = typer.Option(None, help="pending, delivered or dead"),
    destination: str | None = typer.Option(None, help="Only this destination"),
    limit: int = typer.Option(50, min=1, max=10_000),
    after: int = typer.Option(0, min=0, help="Only deliveries with a larger id (paging)"),
) -> None:
    """Deliveries in id order, with their status, attempts and last error."""
    from gateway.store.db import create_engine
    from gateway.sync import deliveries

    settings = load_settings()

    async def run() -> None:
        engine = create_engine(settings)
        try:
            rows = await deliveries.list_deliveries(
                engine, status=status, destination=destination, limit=limit, after=after
            )
        finally:
            await engine.dispose()
        typer.echo(f"{'id':>8} {'destination':24} {'resource':40} {'v':>4} {'status':10} {'tries':>5}  last error")
        for r in rows:
            typer.echo(
                f"{r.id:>8} {r.destination:24} {r.resource:40} {r.version_id:>4} {r.status:10} {r.attempts:>5}  "
                f"{(r.last_error or '')[:80]}"
            )

    asyncio.run(run())


@deliveries_app.command("show")
def show_delivery(delivery_id: int = typer.Argument(..., help="The delivery's id")) -> None:
    """One delivery and every attempt at it."""
    from gateway.store.db import create_engine
    from gateway.sync import deliveries

    settings = load_settings()

    async def run() -> None:
        engine = create_engine(settings)
        try:
            found = await deliveries.get_delivery(engine, delivery_id)
        finally:
            await engine.dispose()
        if found is None:
            typer.echo(f"there is no delivery {delivery_id}", err=True)
            raise typer.Exit(1)
        view, attempts = found
        typer.echo(
            f"delivery {view.id}: {view.resource} version {view.version_id} ({view.method}) to {view.destination}"
        )
        typer.echo(f"  status {view.status}, {view.attempts} attempt(s), created {_when(view.created_at)}")
        if view.last_error:
            typer.echo(f"  last error: {view.last_error}")
        for a in attempts:
            typer.echo(f"  attempt: {a.outcome:10} status {a.status or '-':>4} {a.duration_ms:>6} ms  {a.error or ''}")

    asyncio.run(run())


@deliveries_app.command("replay")
def replay_deliveries(
    delivery_ids: Annotated[list[int] | None, typer.Argument(help="Dead letters to send again")] = None,
    all_dead: bool = typer.Option(False, "--all-dead", help="Every dead letter (of --destination, if given)"),
    destination: str | None = typer.Option(None, help="With --all-dead: only this destination"),
) -> None:
    """Send dead letters again (after the destination or the data was fixed)."""
    from gateway.store.db import create_engine
    from gateway.sync import deliveries
    from gateway.sync.worker import create_celery, nudge

    if not delivery_ids and not all_dead:
        raise typer.BadParameter("give delivery ids or --all-dead")
    settings = load_settings()

    async def run() -> list[tuple[str, int]]:
        engine = create_engine(settings)
        try:
            ids = list(delivery_ids or []) or await deliveries.dead_letter_ids(engine, destination)
            lanes = await deliveries.replay(engine, ids)
        finally:
            await engine.dispose()
        typer.echo(f"{len(ids)} dead letter(s) back in their lanes")
        return lanes

    lanes = asyncio.run(run())
    nudge(create_celery(settings), lanes)


@destinations_app.command("check")
def check_destinations() -> None:
    """Read the destinations file, check secrets and connectors, and ask each destination for its metadata."""
    from connectors.base import ConnectorError
    from connectors.registry import build_push_connector

    settings = load_settings()
    destinations = checked_destinations(settings)
    _check_secrets(destinations)
    failures = 0

    async def run() -> None:
        nonlocal failures
        for d in destinations:
            config = d.connector_settings() | {"timeout_seconds": min(d.timeout_seconds, 10)}
            connector = build_push_connector(d.connector, config)
            try:
                await connector.check()
                typer.echo(f"{d.name}: ok ({d.connector} at {d.endpoint}, recipient {d.recipient.value})")
            except ConnectorError as exc:
                failures += 1
                typer.echo(f"{d.name}: unreachable: {exc}", err=True)
            finally:
                await connector.aclose()

    asyncio.run(run())
    if not destinations:
        typer.echo("no destinations configured (KWG_DESTINATIONS_FILE)")
    raise typer.Exit(1 if failures else 0)


def _register_destination_commands() -> None:
    from gateway.sync import destinations_cli  # noqa: F401  (kwg destinations list|add|remove)


_register_destination_commands()
