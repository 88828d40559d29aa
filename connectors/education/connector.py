"""Push the minimised school view of each change to a school or virtual school's API (JSON over HTTPS).

Only CareTeam, Encounter and Task changes are ever sent, each as ``school_view.school_document`` of that one
resource plus an envelope (type, id, version, deleted). A change of any other type is accepted without sending
anything (``detail`` says it was withheld), so a Condition or Observation never leaves the gateway by this route.
A CareTeam, Encounter or Task is sent even when nothing in it is for the school: the school replaces what it held
for that resource, so an Encounter that stops being planned or a Task that closes disappears from its view.

Errors follow ``connectors.base.classify`` (2xx ok; 408/429/5xx retry the batch; other 4xx refuse that change).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import httpx
import orjson

from connectors.base import Change, PermanentError, PushOutcome, PushReport, classify, send
from connectors.education.config import EducationConfig
from connectors.education.school_view import SCHOOL_TYPES, school_document

WITHHELD = "withheld: not for education"


def change_document(change: Change, school_codes: Sequence[str]) -> dict[str, Any] | None:
    """The document a school receives for one change, or None when the change is never sent to a school."""
    if change.res_type not in SCHOOL_TYPES:
        return None
    resources = [change.resource] if change.resource is not None else []
    view = school_document(resources, school_codes=school_codes, patient_id=change.patient_id)
    envelope = {
        "resource_type": change.res_type,
        "resource_id": change.res_id,
        "version_id": change.version_id,
        "deleted": change.deleted,
    }
    return {**envelope, **view}


class EducationConnector:
    """The education JSON connector. ``transport`` is for tests."""

    kind: ClassVar[str] = "education-json"

    def __init__(self, config: EducationConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
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
        report = PushReport()
        for change in changes:
            body = change_document(change, self.config.school_codes)
            if body is None:
                report.outcomes.append(PushOutcome(change.delivery_id, True, None, WITHHELD))
                continue
            request = self.client.build_request("POST", self.endpoint, content=orjson.dumps(body))
            response = await send(self.client, request)
            error = classify(response)
            if isinstance(error, PermanentError):
                report.outcomes.append(PushOutcome(change.delivery_id, False, error.status, error.detail or str(error)))
            elif error is not None:
                raise error
            else:
                report.outcomes.append(PushOutcome(change.delivery_id, True, response.status_code))
        return report
