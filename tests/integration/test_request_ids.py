"""Request ids: answered in X-Request-ID, on every JSON log line of the request, and carried into the Celery task
the request starts (here a bulk export, through ``kwg serve``'s own worker, a real process)."""

from __future__ import annotations

import logging
import time

import httpx
import orjson
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from gateway.request_ids import RequestIdFilter, RequestIds, accepted, current_request_id
from tests.processes import running_gateway


def _app_that_logs(records: list[logging.LogRecord]) -> FastAPI:
    app = FastAPI()
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("kwg.test.request_ids")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    @app.get("/work")
    async def work() -> dict[str, str | None]:
        logger.info("working")
        return {"seen": current_request_id()}

    app.add_middleware(RequestIds)
    return app


async def test_the_callers_id_is_kept_answered_and_logged() -> None:
    records: list[logging.LogRecord] = []
    app = _app_that_logs(records)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        answer = await client.get("/work", headers={"X-Request-ID": "ics-trace.42"})
        made = await client.get("/work")
    assert answer.headers["x-request-id"] == "ics-trace.42" == answer.json()["seen"]
    assert [r.request_id for r in records] == ["ics-trace.42", made.headers["x-request-id"]]  # type: ignore[attr-defined]
    assert made.headers["x-request-id"] == made.json()["seen"] and len(made.headers["x-request-id"]) == 32
    assert current_request_id() is None  # nothing leaks out of the request


@given(st.text(max_size=100))
def test_only_a_plain_token_is_taken_from_the_caller(value: str) -> None:
    """Header content is never echoed or logged unless it is a plain token (no injection into logs)."""
    taken = accepted(value)
    plain = 0 < len(value) <= 64 and all(c.isascii() and (c.isalnum() or c in "._-") for c in value)
    assert (taken == value) is plain
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in taken)


def test_a_request_id_reaches_the_worker_task_it_starts() -> None:
    with running_gateway(env={"KWG_LOG_JSON": "true", "KWG_LOG_LEVEL": "INFO"}) as gateway:
        patient = {"resourceType": "Patient", "id": "rid-1"}
        put = httpx.put(f"{gateway.url}/Patient/rid-1", json=patient, headers={"Content-Type": "application/fhir+json"})
        assert put.status_code in (200, 201)
        kick = httpx.get(
            f"{gateway.url}/$export",
            params={"_type": "Patient"},
            headers={"Prefer": "respond-async", "Accept": "application/fhir+json", "X-Request-ID": "export-trace-7"},
        )
        assert kick.status_code == 202, kick.text
        assert kick.headers["x-request-id"] == "export-trace-7"
        deadline = time.monotonic() + 60
        worker_lines: list[dict[str, object]] = []
        while time.monotonic() < deadline and not worker_lines:
            lines = [orjson.loads(x) for x in gateway.log.read_bytes().splitlines() if x.startswith(b"{")]
            # The task's own line ("bulk export <id>: done"), from the worker's logger: the API's warning "could not
            # queue bulk export" (gateway.api.export) must not pass for it.
            worker_lines = [
                x for x in lines if x.get("logger") == "gateway.sync.worker" and "bulk export" in str(x.get("message"))
            ]
            time.sleep(0.3)
        assert worker_lines, gateway.log.read_text()[-3000:]
        assert all(line.get("request_id") == "export-trace-7" for line in worker_lines)
        assert any(str(line.get("message")).endswith(": done") for line in worker_lines)
