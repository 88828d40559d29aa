"""The ``kwg`` command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from gateway.settings import Settings, load_settings

app = typer.Typer(help="Keyworking Gateway: FHIR R4 store and interoperability gateway.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _register_security_commands() -> None:
    from gateway.security.cli import clients_app, token

    app.add_typer(clients_app, name="clients")
    app.command()(token)


_register_security_commands()


def _register_import_commands() -> None:
    from gateway.imports.cli import import_app

    app.add_typer(import_app, name="import")


_register_import_commands()


def _register_audit_commands() -> None:
    from gateway.audit.cli import audit_app

    app.add_typer(audit_app, name="audit")


_register_audit_commands()

tasks_app = typer.Typer(help="Tasks the register rules raise.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")


@tasks_app.command("sweep-overdue")
def tasks_sweep_overdue() -> None:
    """Flag open Tasks past their due date (Task?business-status=overdue finds them); unflag rescheduled ones."""
    import asyncio
    from datetime import UTC, datetime

    from gateway.register.sweep import sweep_overdue_tasks
    from gateway.store.db import create_engine
    from gateway.store.repository import SqlFhirRepository

    settings = load_settings()

    async def run() -> tuple[int, int]:
        engine = create_engine(settings)
        try:
            return await sweep_overdue_tasks(SqlFhirRepository(engine), datetime.now(UTC).date())
        finally:
            await engine.dispose()

    flagged, cleared = asyncio.run(run())
    typer.echo(f"{flagged} Task(s) flagged overdue, {cleared} no longer overdue")


def _register_sync_commands() -> None:
    from gateway.sync.cli import beat, deliveries_app, destinations_app, relay, worker

    app.command()(worker)
    app.command()(beat)
    app.command()(relay)
    app.add_typer(deliveries_app, name="deliveries")
    app.add_typer(destinations_app, name="destinations")


_register_sync_commands()


def _register_console_commands() -> None:
    from gateway.console.cli import console_app

    app.add_typer(console_app, name="console")


_register_console_commands()


def _register_export_commands() -> None:
    from gateway.summary.cli import export_app

    app.add_typer(export_app, name="export")


_register_export_commands()


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("heads", help="Alembic revision (heads: all)")) -> None:
    """Apply database migrations (safe to repeat)."""
    from gateway.store.migrate import upgrade

    settings = load_settings()
    upgrade(settings, revision)
    typer.echo(f"database at {revision}: {_describe(settings.resolved_database_url)}")


@db_app.command("reindex")
def db_reindex(
    types: Annotated[list[str] | None, typer.Argument(help="Resource types to reindex (default: all)")] = None,
    batch: int = typer.Option(500, min=1, help="Resources per transaction"),
) -> None:
    """Rebuild the search index from stored resources (after search parameters change). Safe to repeat."""
    import asyncio

    from gateway.store.db import create_engine
    from gateway.store.reindex import reindex

    settings = load_settings()

    async def run() -> None:
        engine = create_engine(settings)
        try:
            report = await reindex(engine, types or None, batch=batch)
        finally:
            await engine.dispose()
        typer.echo(f"reindexed {report.resources} resources ({report.rows} index rows)")

    asyncio.run(run())


def _describe(url: str) -> str:
    if "@" in url:  # hide credentials
        scheme, rest = url.split("://", 1)
        return f"{scheme}://…@{rest.split('@', 1)[1]}"
    return url


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on"),
    port: int = typer.Option(8080, help="Port to listen on"),
    workers: int = typer.Option(1, help="Worker processes"),
    migrate: bool = typer.Option(True, help="Apply database migrations before starting"),
    log_level: str = typer.Option("info", help="uvicorn log level"),
    demo: bool = typer.Option(False, help="Once up, load the synthetic demo ICS if the gateway holds none (kwg demo)"),
) -> None:
    """Start the gateway (FHIR REST at /fhir, the domain API at /api/v1)."""
    import uvicorn

    from gateway.sync.cli import checked_destinations

    settings = load_settings()
    checked_destinations(settings)  # a bad destinations file stops here, one line per problem
    _checked_rules(settings)
    if migrate:
        from gateway.store.migrate import upgrade

        upgrade(settings)
    os.environ.setdefault("KWG_HOME", str(settings.home))
    typer.echo(f"Keyworking Gateway on http://{host}:{port}/fhir ({_describe(settings.resolved_database_url)})")
    listener = _start_mllp_child() if settings.mllp_enabled else None
    if settings.auth_on and settings.env.value == "development":
        from gateway.security.devclient import CLIENT_ID, ensure_development_client

        key = ensure_development_client(settings)
        typer.echo(f"authentication is on; a development client is registered: {CLIENT_ID}")
        typer.echo(f"  TOKEN=$(kwg token --client-id {CLIENT_ID} --key {key} --url http://{_client_host(host)}:{port})")
    elif not settings.auth_on:
        typer.echo("WARNING: KWG_AUTH=off: authentication is OFF (development only)", err=True)
    if settings.env.value == "development":
        from gateway.console.devoperator import ensure_development_operator

        operator, password_file = ensure_development_operator(settings)
        typer.echo(f"operations console: http://{_client_host(host)}:{port}/console")
        typer.echo(f"  sign in as {operator}; password: cat {password_file}")
    sync_worker = _start_embedded_worker() if settings.broker_url is None else None
    loader = _start_demo_child(f"http://{_client_host(host)}:{port}") if demo else None
    try:
        uvicorn.run(
            "gateway.app:create_app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=False,
        )
    finally:
        if loader is not None:
            stop_child(loader)
        if sync_worker is not None:
            stop_child(sync_worker)
        if listener is not None:
            stop_child(listener)


def _start_embedded_worker() -> subprocess.Popen[bytes]:
    """No broker configured: a real Celery worker (with beat and the relay) on the embedded broker, as a child."""
    command = [
        sys.executable,
        "-m",
        "gateway.cli",
        "worker",
        "--beat",
        "--pool",
        "threads",
        "--concurrency",
        "4",
        "--loglevel",
        "WARNING",
        "--parent",
        str(os.getpid()),
    ]
    typer.echo("starting the sync worker on the embedded broker (set KWG_BROKER_URL to run workers separately)")
    return subprocess.Popen(command)


def _checked_rules(settings: Settings) -> None:
    """A bad rules file stops start-up with one line per problem."""
    if settings.rules_file is None:
        return
    from gateway.register.config import RulesFileError, load_rules

    try:
        load_rules(settings.rules_file)
    except RulesFileError as exc:
        for problem in exc.problems:
            typer.echo(f"configuration error: KWG_RULES_FILE: {problem}", err=True)
        raise typer.Exit(2) from None


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _start_demo_child(url: str) -> subprocess.Popen[bytes]:
    """``kwg demo --if-empty`` against this server, once it answers (a child, so start-up is not held up)."""
    command = [sys.executable, "-m", "gateway.cli", "demo", "--url", url, "--if-empty", "--wait", "120"]
    return subprocess.Popen(command)


@app.command()
def demo(
    url: str = typer.Option("http://127.0.0.1:8080", envvar="KWG_URL", help="The gateway to load"),
    people: int = typer.Option(300, min=1, max=100_000, help="Young people to create"),
    seed: int = typer.Option(7, help="Seed of the synthetic population (same seed, same people)"),
    if_empty: bool = typer.Option(False, help="Do nothing if this seed's first young person is already there"),
    wait: float = typer.Option(0, min=0, help="Seconds to wait for the gateway to answer /health/ready"),
    concurrency: int = typer.Option(4, min=1, max=64, help="Young people loaded at once"),
    client_id: str = typer.Option("kwg-demo", help="The client to authenticate as (when the gateway requires it)"),
    key: Annotated[
        Path | None, typer.Option(help="Its private key (default: KWG_HOME/demo-client.pem, if there)")
    ] = None,
) -> None:
    """Load a synthetic ICS (five places, young people in every rating and phase) through the domain API."""
    import asyncio
    import time

    import httpx

    from gateway.demo.loader import DemoLoadError, LoadReport, load
    from gateway.demo.population import population
    from gateway.security.devclient import ClientToken, key_path

    key_file = key or key_path(load_settings())
    auth = ClientToken(url, client_id, key_file) if key_file.exists() else None

    async def run() -> LoadReport | None:
        async with httpx.AsyncClient(base_url=url, timeout=60, auth=auth) as client:
            deadline = time.monotonic() + wait
            while True:
                try:
                    if (await client.get("/health/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() >= deadline:
                    raise typer.BadParameter(f"no gateway answers at {url}", param_hint="--url")
                await asyncio.sleep(0.5)
            first = next(iter(population(seed=seed, people=1)))
            if if_empty and (await client.get(f"/api/v1/people/{first.person.id}")).status_code == 200:
                typer.echo(f"demo data (seed {seed}) is already loaded at {url}")
                return None
            started = time.monotonic()

            def progress(report: LoadReport) -> None:
                if report.people % 50 == 0 or report.people == people:
                    typer.echo(f"  {report.people}/{people} young people, {report.records} records")

            report = await load(
                client, population(seed=seed, people=people), concurrency=concurrency, progress=progress
            )
            elapsed = time.monotonic() - started
            typer.echo(
                f"loaded {report.organisations} agencies and {report.people} young people ({report.records} records)"
                f" into {url} in {elapsed:.1f} s; "
                f"try {url}/api/v1/people/{first.person.id} or {url}/docs"
            )
            return report

    try:
        asyncio.run(run())
    except DemoLoadError as exc:
        typer.echo(f"demo load failed: {exc}", err=True)
        raise typer.Exit(1) from None


def _start_mllp_child() -> subprocess.Popen[bytes]:
    """``kwg mllp`` beside the HTTP workers: one listener process, so each connection's order is one process's."""
    command = [sys.executable, "-m", "gateway.cli", "mllp", "--no-migrate", "--parent", str(os.getpid())]
    typer.echo("starting the HL7 v2 MLLP listener (KWG_MLLP_ENABLED)")
    return subprocess.Popen(command)


def stop_child(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM a child process; SIGKILL it if it has not gone after 15 s."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A FHIR R4 resource (JSON, or XML)")],
    profile: Annotated[list[str] | None, typer.Option("--profile", help="Profile URL to check (repeatable)")] = None,
) -> None:
    """Validate a resource: structure, base type, claimed and given profiles. Exit 1 when there are errors."""
    from gateway.conformance.cli import validate_file

    issues = validate_file(file, profile or [])
    for issue in issues:
        where = ", ".join(issue.expression) or "-"
        typer.echo(f"{issue.severity:<11} {where}: {issue.diagnostics}")
    errors = sum(1 for i in issues if i.severity in ("error", "fatal"))
    typer.echo(f"{file}: {errors} error(s), {len(issues) - errors} other issue(s)")
    raise typer.Exit(1 if errors else 0)


hl7_app = typer.Typer(help="HL7 v2 message log and tools.", no_args_is_help=True)
app.add_typer(hl7_app, name="hl7")


@app.command()
def mllp(
    host: str | None = typer.Option(None, help="Address to listen on (default KWG_MLLP_HOST)"),
    port: int | None = typer.Option(None, help="Port to listen on (default KWG_MLLP_PORT, 2575)"),
    migrate: bool = typer.Option(True, help="Apply database migrations before starting"),
    cohort_filter: bool = typer.Option(True, help="Keep only messages about people in the FHIR store"),
    parent: int | None = typer.Option(None, hidden=True, help="Stop when this process id is gone (kwg serve)"),
) -> None:
    """Start the HL7 v2 MLLP listener: each message is stored durably, then ACKed."""
    import asyncio

    from gateway.hl7v2.server import run_mllp

    settings = load_settings()
    if migrate:
        from gateway.store.migrate import upgrade

        upgrade(settings)

    def announce(bound_host: str, bound_port: int) -> None:
        typer.echo(f"MLLP listening on {bound_host}:{bound_port} ({_describe(settings.resolved_database_url)})")

    asyncio.run(
        run_mllp(
            settings,
            host or settings.mllp_host,
            settings.mllp_port if port is None else port,
            cohort_filter=cohort_filter,
            announce=announce,
            parent_pid=parent,
        )
    )


@hl7_app.command("purge")
def hl7_purge(
    days: int | None = typer.Option(None, help="Days raw messages are kept (default KWG_MLLP_RAW_RETENTION_DAYS)"),
) -> None:
    """Remove the raw content of logged HL7 messages older than the retention period (summary and status stay)."""
    import asyncio

    from gateway.hl7v2.log import purge_raw
    from gateway.store.db import create_engine

    settings = load_settings()

    async def run() -> int:
        engine = create_engine(settings)
        try:
            return await purge_raw(engine, settings.mllp_raw_retention_days if days is None else days)
        finally:
            await engine.dispose()

    typer.echo(f"purged the raw content of {asyncio.run(run())} message(s)")


@hl7_app.command("check")
def hl7_check(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="An HL7 v2 message (ER7 text)")],
) -> None:
    """Check a message's envelope and structure (hl7apy, tolerant). Exit 1 when it would not be accepted."""
    from gateway.hl7v2.check import check_file

    findings = check_file(file)
    for finding in findings:
        typer.echo(finding)
    errors = sum(1 for f in findings if f.startswith("error"))
    typer.echo(f"{file}: {errors} error(s), {len(findings) - errors} warning(s)")
    raise typer.Exit(1 if errors else 0)


def configuration_errors(exc: ValidationError) -> list[str]:
    """One line per bad setting, naming its environment variable."""
    lines = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(p) for p in error["loc"]) or "settings"
        given = f" (got {error['input']!r})" if "input" in error and not isinstance(error["input"], dict) else ""
        lines.append(f"KWG_{field.upper()}: {error['msg']}{given}")
    return lines


def main() -> None:
    try:
        app()
    except ValidationError as exc:
        if exc.title != "Settings":
            raise
        for line in configuration_errors(exc):
            typer.echo(f"configuration error: {line}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
