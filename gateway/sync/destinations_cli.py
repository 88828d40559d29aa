"""``kwg destinations list|add|remove``: the API's destinations from the command line (same rules, audited)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import orjson
import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.auth import Caller
from gateway.errors import GatewayError
from gateway.sync import destination_store
from gateway.sync.cli import checked_destinations, destinations_app

T = TypeVar("T")

#: Who the AuditEvents of these commands name.
OPERATOR = Caller(client_id="kwg-cli", organisation="LOCAL", purpose="ADMINISTRATION", organisation_type="operator")


async def _audited(interaction: str, name: str, description: str) -> None:
    from gateway.audit.trail import AuditTrail
    from gateway.settings import load_settings
    from gateway.store.db import create_engine
    from gateway.store.repository import SqlFhirRepository

    engine = create_engine(load_settings())
    try:
        trail = AuditTrail(lambda: SqlFhirRepository(engine))
        await trail.start()
        trail.interaction(OPERATOR, interaction, references=(f"destination/{name}",), description=description)
        await trail.stop()  # writes what is queued
    finally:
        await engine.dispose()


def _with_store(action: Callable[[AsyncEngine, frozenset[str]], Awaitable[T]]) -> T:
    """Run ``action(engine, names of the file's destinations)``; a refusal (409, 404) exits 1 with its message."""
    from gateway.settings import load_settings
    from gateway.store.db import create_engine

    settings = load_settings()
    file_names = frozenset(d.name for d in checked_destinations(settings))

    async def run() -> T:
        engine = create_engine(settings)
        try:
            return await action(engine, file_names)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except GatewayError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


@destinations_app.command("list")
def list_destinations() -> None:
    """The destinations: the file's and those made through the API."""
    from gateway.settings import load_settings

    for d in checked_destinations(load_settings()):
        typer.echo(f"{d.name}\tfile\t{d.connector}\t{d.recipient.value}\t{d.endpoint}")
    stored = _with_store(lambda engine, _: destination_store.list_destinations(engine))
    for d in stored.live:
        typer.echo(f"{d.name}\tapi\t{d.connector}\t{d.recipient.value}\t{d.endpoint}")


@destinations_app.command("add")
def add_destination(file: Annotated[Path, typer.Argument(help="A JSON file holding one destination")]) -> None:
    """Add (or replace) a destination from a JSON file, as ``PUT /admin/destinations/{name}`` does."""
    try:
        destination = destination_store.parse_body(orjson.loads(file.read_bytes()))
    except (OSError, orjson.JSONDecodeError) as exc:
        typer.echo(f"error: cannot read {file}: {exc}", err=True)
        raise typer.Exit(2) from None
    except GatewayError as exc:
        for issue in exc.issues:
            typer.echo(f"error: {', '.join(issue.expression)}: {issue.diagnostics}", err=True)
        raise typer.Exit(2) from None
    created = _with_store(lambda engine, names: destination_store.save(engine, destination, names, replace=True))
    asyncio.run(_audited("create" if created else "update", destination.name, "destination saved (kwg)"))
    typer.echo(f"{'added' if created else 'replaced'} {destination.name}")


@destinations_app.command("remove")
def remove_destination(name: str) -> None:
    """Remove a destination made through the API; its pending deliveries become dead letters."""
    dead = _with_store(lambda engine, names: destination_store.remove(engine, name, names))
    asyncio.run(_audited("delete", name, f"destination removed (kwg); {dead} pending delivery(ies) dead-lettered"))
    typer.echo(f"removed {name}; {dead} pending delivery(ies) dead-lettered")
