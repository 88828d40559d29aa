"""The summary as an HTML page a person can read on screen or print on A4 (one Jinja2 template, autoescaped), and
as a PDF rendered from that page by xhtml2pdf (pure Python: nothing to install beyond pip)."""

from __future__ import annotations

import functools
import io

import jinja2

from gateway.summary.compose import Summary
from gateway.summary.document import TITLE
from gateway.summary.fhirtext import human_name, identifier_value, nhs_number_text, when
from mappings.keyworking import urls


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("gateway.summary", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def render_html(summary: Summary) -> str:
    patient = summary.patient
    nhs = identifier_value(patient, urls.NHS_NUMBER)
    return (
        environment()
        .get_template("summary.html")
        .render(
            title=TITLE,
            name=human_name(patient),
            nhs_number=nhs_number_text(nhs) if nhs else "",
            birth_date=when(patient.get("birthDate")),
            prepared=summary.prepared,
            prepared_on=when(summary.prepared.at) + " " + summary.prepared.at[11:16] + " UTC",
            sections=summary.sections,
        )
    )


class PdfRenderingFailed(RuntimeError):
    """xhtml2pdf could not lay the page out (a bug in the template, not the caller's fault)."""


def render_pdf(page: str) -> bytes:
    """The HTML page as an A4 PDF (blocking: run it off the event loop)."""
    from xhtml2pdf import pisa  # type: ignore[import-untyped]  # loads reportlab and fonts on first use

    out = io.BytesIO()
    status = pisa.CreatePDF(src=page, dest=out, encoding="utf-8")
    if status.err:
        raise PdfRenderingFailed(f"xhtml2pdf reported {status.err} error(s)")
    return out.getvalue()
