"""``kwg audit verify``: check the hash chains of the stored AuditEvents (gateway.audit.chain)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import orjson
import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit.chain import ChainReport, verify
from gateway.store.models import resource

audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)

PAGE = 5000


async def stored_events(engine: AsyncEngine) -> list[dict[str, object]]:
    """Every current AuditEvent, parsed, read a page at a time by primary key."""
    events: list[dict[str, object]] = []
    after = 0
    async with engine.connect() as conn:
        while True:
            rows = (
                await conn.execute(
                    select(resource.c.pk, resource.c.content)
                    .where(resource.c.res_type == "AuditEvent", resource.c.pk > after, resource.c.deleted.is_(False))
                    .order_by(resource.c.pk)
                    .limit(PAGE)
                )
            ).all()
            if not rows:
                return events
            events += [orjson.loads(content) for _pk, content in rows if content is not None]
            after = rows[-1][0]


async def verify_stored(engine: AsyncEngine) -> ChainReport:
    return verify(await stored_events(engine))


def report_lines(report: ChainReport) -> Iterator[str]:
    yield f"{report.checked} AuditEvents checked; {report.unchained} written without a chain"
    for stream, head in report.heads.items():
        yield f"stream {stream}: {head.sequence} events, head {head.last_hash}"
    yield from (f"PROBLEM {p}" for p in report.problems)
    yield "the chains are intact" if report.intact else f"{len(report.problems)} problems: the trail was changed"


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute every AuditEvent's hash and follow each chain; exit 1 when anything was edited, removed or
    inserted. Keep the printed heads elsewhere to detect the removal of a stream's last events."""
    from gateway.settings import load_settings
    from gateway.store.db import create_engine

    async def run() -> ChainReport:
        engine = create_engine(load_settings())
        try:
            return await verify_stored(engine)
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    for line in report_lines(report):
        typer.echo(line)
    raise typer.Exit(0 if report.intact else 1)
