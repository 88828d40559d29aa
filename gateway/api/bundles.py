"""batch and transaction Bundles (placeholder: replaced by the full processor)."""

from __future__ import annotations

from typing import Any

from gateway.errors import InvalidBundle
from gateway.store.repository import FhirRepository


async def process_bundle(repo: FhirRepository, body: Any, base: str) -> dict[str, Any]:
    raise InvalidBundle("batch and transaction Bundles are not processed yet")
