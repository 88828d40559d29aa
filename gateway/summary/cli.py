"""``kwg export summary``: a person's cross-agency summary written to a file (or stdout), straight from the store.

The command runs as the host's operator (the development caller: no sharing profile applies) and is audited like
the API: one AuditEvent (operation) naming the resources included, client ``kwg-cli``. The person is found by NHS
number; the output names no one on the terminal (only the file it wrote and its size).
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import orjson
import typer

from gateway.auth import DEVELOPMENT_CALLER
from gateway.settings import load_settings
from gateway.summary.formats import SummaryFormat

export_app = typer.Typer(help="Export records from the store.", no_args_is_help=True)

#: The caller the command acts as: the host's operator, recorded in the audit trail as ``kwg-cli``.
OPERATOR = replace(DEVELOPMENT_CALLER, client_id="kwg-cli", organisation="LOCAL-OPERATOR")


class NoSuchPerson(Exception):
    """No (single) Patient holds this NHS number."""


async def export_summary(nhs_number: str, wanted: SummaryFormat, base: str) -> bytes:
    from gateway.audit.trail import AuditTrail
    from gateway.store.db import create_engine
    from gateway.store.repository import SqlFhirRepository
    from gateway.store.timeutil import now_us, to_instant
    from gateway.summary.compose import compose
    from gateway.summary.page import render_html, render_pdf
    from gateway.validation import validate_resource
    from mappings.keyworking import urls

    engine = create_engine(load_settings())
    repo = SqlFhirRepository(engine, validator=validate_resource)
    trail = AuditTrail(lambda: repo)
    await trail.start()
    try:
        found = await repo.search("Patient", [("identifier", f"{urls.NHS_NUMBER}|{nhs_number}")])
        if len(found.matches) != 1:
            raise NoSuchPerson(f"{len(found.matches)} people hold that NHS number (one expected)")
        patient_id = found.matches[0].res_id
        made = await compose(repo, OPERATOR, patient_id, base=base, at=to_instant(now_us()))
        trail.interaction(
            OPERATOR, "operation", made.included, patients=(patient_id,), query=f"Patient/{patient_id}/$summary"
        )
    finally:
        await trail.stop()  # writes what was recorded
        await engine.dispose()
    if wanted is SummaryFormat.JSON:
        return orjson.dumps(made.bundle, option=orjson.OPT_INDENT_2)
    page = render_html(made)
    return page.encode() if wanted is SummaryFormat.HTML else render_pdf(page)


@export_app.command("summary")
def summary(
    nhs_number: Annotated[str, typer.Option("--nhs-number", help="The person's NHS number (spaces allowed)")],
    output_format: Annotated[SummaryFormat, typer.Option("--format", help="json (FHIR document), html or pdf")] = (
        SummaryFormat.JSON
    ),
    out: Annotated[Path | None, typer.Option("--out", help="File to write (default: standard output)")] = None,
) -> None:
    """Write one person's cross-agency keyworking summary (FHIR document Bundle, HTML page or PDF)."""
    number = "".join(nhs_number.split())
    if not (len(number) == 10 and number.isdigit()):
        typer.echo("--nhs-number must be 10 digits", err=True)
        raise typer.Exit(2)
    settings = load_settings()
    base = str(settings.base_url).rstrip("/") if settings.base_url else "http://localhost/fhir"
    try:
        body = asyncio.run(export_summary(number, output_format, base))
    except NoSuchPerson as problem:
        typer.echo(f"no summary: {problem}", err=True)
        raise typer.Exit(1) from None
    if out is None:
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
        return
    out.write_bytes(body)
    typer.echo(f"wrote {out} ({len(body)} bytes, {output_format.value})", err=True)
