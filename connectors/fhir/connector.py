"""Push changes to a FHIR R4 server as transaction Bundles; pull what changed there since a cursor.

Push: one ``transaction`` Bundle per batch, each change an entry ``PUT {type}/{id}`` (a deletion ``DELETE``), in
order. The gateway's resource id is the business identifier both sides share, so sending a change twice leaves the
destination as it was (an update to the same content). A transaction is all or nothing: when the server refuses it
(4xx), the batch is split and each change sent alone, so one bad change becomes one dead letter and the rest arrive.

Pull: ``GET {type}?_lastUpdated=gt{cursor}&_sort=_lastUpdated``, following ``next`` links.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

import httpx
import orjson

from connectors.base import (
    Change,
    PermanentError,
    PushOutcome,
    PushReport,
    TransientError,
    classify,
    send,
)
from connectors.fhir.config import FhirConfig

FHIR_JSON = "application/fhir+json"
SERVER_META = ("versionId", "lastUpdated", "source")


def _outbound(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource as sent: the server sets its own versionId and lastUpdated."""
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        return resource
    kept = {k: v for k, v in meta.items() if k not in SERVER_META}
    out = {k: v for k, v in resource.items() if k != "meta"}
    if kept:
        out["meta"] = kept
    return out


def transaction(changes: Sequence[Change]) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    for change in changes:
        url = f"{change.res_type}/{change.res_id}"
        if change.resource is None:
            entries.append({"request": {"method": "DELETE", "url": url}})
        else:
            entries.append({"resource": _outbound(change.resource), "request": {"method": "PUT", "url": url}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


class FhirConnector:
    """The NHS FHIR connector. ``transport`` is for tests (``httpx.MockTransport``); production uses the network."""

    kind: ClassVar[str] = "fhir"

    def __init__(self, config: FhirConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        headers = {"Accept": FHIR_JSON, "Content-Type": FHIR_JSON}
        if config.bearer_token is not None:
            headers["Authorization"] = f"Bearer {config.bearer_token.get_secret_value()}"
        self.endpoint = str(config.endpoint).rstrip("/")
        self.client = httpx.AsyncClient(
            headers=headers,
            timeout=config.timeout_seconds,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def check(self) -> None:
        response = await send(self.client, self.client.build_request("GET", f"{self.endpoint}/metadata"))
        error = classify(response)
        if error is not None:
            raise error

    async def push(self, changes: Sequence[Change]) -> PushReport:
        if not changes:
            return PushReport()
        try:
            await self._post(changes)
        except PermanentError as exc:
            if len(changes) == 1:
                change = changes[0]
                return PushReport([PushOutcome(change.delivery_id, False, exc.status, exc.detail or str(exc))])
            # Find the change the server refused: each alone, in order (a transient failure here retries all).
            report = PushReport()
            for change in changes:
                report.outcomes += (await self.push([change])).outcomes
            return report
        return PushReport([PushOutcome(c.delivery_id, True, 200) for c in changes])

    async def _post(self, changes: Sequence[Change]) -> None:
        body = orjson.dumps(transaction(changes))
        response = await send(self.client, self.client.build_request("POST", self.endpoint, content=body))
        error = classify(response)
        if error is not None:
            raise error
        try:
            bundle = response.json()
        except ValueError:
            raise TransientError("the server answered 2xx with a body that is not JSON") from None
        entries = bundle.get("entry", []) if isinstance(bundle, dict) else []
        if len(entries) != len(changes):
            raise TransientError(f"the server answered {len(entries)} entries for {len(changes)} changes")

    async def changed_since(self, res_type: str, cursor: str | None) -> AsyncIterator[dict[str, Any]]:
        """Resources of a type changed after ``cursor`` (an instant), oldest first."""
        params = {"_sort": "_lastUpdated", "_count": "100"}
        if cursor:
            params["_lastUpdated"] = f"gt{cursor}"
        request = self.client.build_request("GET", f"{self.endpoint}/{res_type}", params=params)
        while True:
            response = await send(self.client, request)
            error = classify(response)
            if error is not None:
                raise error
            bundle = response.json()
            for entry in bundle.get("entry", []):
                if isinstance(entry.get("resource"), dict):
                    yield entry["resource"]
            link = next((x["url"] for x in bundle.get("link", []) if x.get("relation") == "next"), None)
            if link is None:
                return
            request = self.client.build_request("GET", link)
