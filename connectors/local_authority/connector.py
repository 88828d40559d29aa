"""Push changes to a local authority's children's social care API as JSON; read back recommendation statuses.

Push: each change becomes one flat document (``document.document``) POSTed to the endpoint, in order, with an
``Idempotency-Key`` naming the change's version. With ``batch`` on, the whole batch goes as one JSON array; when
the LA refuses the array (4xx) each change is sent alone, so one bad change becomes one dead letter.

Errors follow ``connectors.base.classify``: 2xx accepted; 408, 429 and 5xx (and transport failures) raise
TransientError, so the whole batch is retried (the LA drops the versions it already holds); any other 4xx refuses
that change for good.

Recommendations: ``GET {endpoint}/recommendations/{id}`` answers ``{"status": "..."}`` in the LA's words, mapped to
Task.status by ``recommendations.task_status``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import httpx
import orjson

from connectors.base import Change, PermanentError, PushOutcome, PushReport, TransientError, classify, send
from connectors.local_authority.config import LocalAuthorityConfig
from connectors.local_authority.document import compile_mapping, document, idempotency_key
from connectors.local_authority.recommendations import TaskStatus, task_status


class LocalAuthorityConnector:
    """The LA JSON connector. ``transport`` is for tests (``httpx.MockTransport``); production uses the network."""

    kind: ClassVar[str] = "local-authority-json"

    def __init__(self, config: LocalAuthorityConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.mapping = compile_mapping(config.mapping)
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if config.api_key is not None:
            headers["X-API-Key"] = config.api_key.get_secret_value()
        if config.bearer_token is not None:
            headers["Authorization"] = f"Bearer {config.bearer_token.get_secret_value()}"
        self.endpoint = str(config.endpoint).rstrip("/")
        self.client = httpx.AsyncClient(headers=headers, timeout=config.timeout_seconds, transport=transport)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def check(self) -> None:
        url = f"{self.endpoint}/{self.config.health_path.lstrip('/')}"
        error = classify(await send(self.client, self.client.build_request("GET", url)))
        if error is not None:
            raise error

    async def push(self, changes: Sequence[Change]) -> PushReport:
        if not changes:
            return PushReport()
        if self.config.batch and len(changes) > 1:
            return await self._push_batch(changes)
        report = PushReport()
        for change in changes:
            report.outcomes.append(await self._push_one(change))
        return report

    async def _push_one(self, change: Change) -> PushOutcome:
        body = orjson.dumps(document(change, self.mapping))
        request = self.client.build_request(
            "POST", self.endpoint, content=body, headers={"Idempotency-Key": idempotency_key(change)}
        )
        response = await send(self.client, request)
        error = classify(response)
        if isinstance(error, PermanentError):
            return PushOutcome(change.delivery_id, False, error.status, error.detail or str(error))
        if error is not None:
            raise error
        return PushOutcome(change.delivery_id, True, response.status_code)

    async def _push_batch(self, changes: Sequence[Change]) -> PushReport:
        body = orjson.dumps([document(c, self.mapping) for c in changes])
        response = await send(self.client, self.client.build_request("POST", self.endpoint, content=body))
        error = classify(response)
        if isinstance(error, PermanentError):
            report = PushReport()
            for change in changes:  # find the refused change: each alone, in order
                report.outcomes.append(await self._push_one(change))
            return report
        if error is not None:
            raise error
        return PushReport([PushOutcome(c.delivery_id, True, response.status_code) for c in changes])

    async def recommendation_status(self, recommendation_id: str) -> TaskStatus:
        """The Task.status the LA reports for one recommendation (its Task id)."""
        url = f"{self.endpoint}/recommendations/{recommendation_id}"
        response = await send(self.client, self.client.build_request("GET", url))
        error = classify(response)
        if error is not None:
            raise error
        try:
            body = response.json()
        except ValueError:
            raise TransientError("the LA answered 2xx with a body that is not JSON") from None
        word = body.get("status") if isinstance(body, dict) else None
        if not isinstance(word, str):
            raise PermanentError("the LA's answer has no status", status=response.status_code)
        status = task_status(word)
        if status is None:
            raise PermanentError(f"the LA's status {word!r} is not one we know", status=response.status_code)
        return status
