"""``POST /fhir``: a ``batch`` or ``transaction`` Bundle in, its response Bundle out (http.html#transaction).

The work lives in :mod:`gateway.bundles`; this module joins its steps: check the Bundle, run it, write the answer.
"""

from __future__ import annotations

from typing import Any

from gateway.bundles.entries import parse_bundle
from gateway.bundles.processor import run_batch, run_transaction
from gateway.bundles.response import render_response, return_preference
from gateway.store.repository import FhirRepository


async def process_bundle(repo: FhirRepository, body: Any, base: str, *, prefer: str = "") -> bytes:
    """The response Bundle's bytes. A transaction that fails raises the failing entry's error (nothing is kept)."""
    parsed = parse_bundle(body, base)
    strict = "handling=lenient" not in prefer
    if parsed.kind == "transaction":
        results = await run_transaction(repo, parsed.entries, base, strict=strict)
    else:
        results = await run_batch(repo, parsed.entries, base, strict=strict)
    return render_response(parsed.kind, results, base, return_preference(prefer))
