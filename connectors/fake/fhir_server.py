"""A fake FHIR destination that speaks the real protocol over HTTP, with faults on demand (tests and the demo).

    python -m connectors.fake.fhir_server --port 8555

It accepts ``transaction`` Bundles at ``POST /fhir`` (``PUT Type/id`` and ``DELETE Type/id`` entries, all or
nothing), serves ``GET /fhir/metadata`` and ``GET /fhir/{type}/{id}``, and keeps in memory what it received:

- ``GET /_log``: the *effective* changes in arrival order (a PUT of content identical to what it holds changes
  nothing and is not logged, as on a real server with no-op detection), and how many requests and entries arrived;
- ``POST /_faults`` with ``{"plan": ["500", "429:2", "timeout", "400", "ok"], "delay": 0.0}`` (fields not given
  stay as they are): the next requests
  answer in that order (``429:N`` with ``Retry-After: N``; ``timeout`` holds the answer for 60 s; ``400`` refuses
  the Bundle with an OperationOutcome), then normally; ``delay`` slows every answer; ``reject_ids`` refuses any
  transaction holding one of those ``Type/id`` with 422 (a poison change);
- ``POST /_reset``.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

FHIR_JSON = "application/fhir+json"


class FakeFhirState:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.resources: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, int] = {}
        self.log: list[dict[str, Any]] = []
        self.requests = 0
        self.entries = 0
        self.plan: list[str] = []
        self.delay = 0.0
        self.reject_ids: set[str] = set()


def _outcome(status: int, message: str) -> JSONResponse:
    issue = {"severity": "error", "code": "invalid", "diagnostics": message}
    body = {"resourceType": "OperationOutcome", "issue": [issue]}
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


def _comparable(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != "meta"}


def _apply(state: FakeFhirState, url: str, resource: dict[str, Any]) -> int:
    """Store a PUT; content identical to what is held changes nothing. Returns the version now held."""
    current = state.resources.get(url)
    if current is not None and _comparable(current) == _comparable(resource):
        return state.versions[url]
    version = state.versions.get(url, 0) + 1
    state.versions[url] = version
    state.resources[url] = {**resource, "meta": {**resource.get("meta", {}), "versionId": str(version)}}
    state.log.append({"url": url, "method": "PUT", "resource": resource})
    return version


def create_app() -> FastAPI:
    app = FastAPI(title="Fake FHIR destination")
    state = FakeFhirState()
    app.state.fake = state

    @app.post("/_faults")
    async def faults(request: Request) -> dict[str, Any]:
        body = await request.json()  # only the fields given change
        if "plan" in body:
            state.plan = [str(p) for p in body["plan"]]
        if "delay" in body:
            state.delay = float(body["delay"])
        if "reject_ids" in body:
            state.reject_ids = set(body["reject_ids"])
        return {"plan": state.plan, "delay": state.delay}

    @app.post("/_reset")
    async def reset() -> dict[str, str]:
        state.reset()
        return {"status": "reset"}

    @app.get("/_log")
    async def log() -> dict[str, Any]:
        return {"changes": state.log, "requests": state.requests, "entries": state.entries, "plan": state.plan}

    @app.get("/fhir/metadata")
    async def metadata() -> Response:
        return JSONResponse({"resourceType": "CapabilityStatement", "status": "active", "fhirVersion": "4.0.1"})

    @app.get("/fhir/{res_type}/{res_id}")
    async def read(res_type: str, res_id: str) -> Response:
        key = f"{res_type}/{res_id}"
        if key not in state.resources:
            return _outcome(404, f"{key} is not known")
        return JSONResponse(state.resources[key], media_type=FHIR_JSON)

    @app.put("/fhir/{res_type}/{res_id}")
    async def put(res_type: str, res_id: str, request: Request) -> Response:
        state.requests += 1
        state.entries += 1
        url = f"{res_type}/{res_id}"
        resource = await request.json()
        _apply(state, url, resource)
        return JSONResponse(resource, media_type=FHIR_JSON)

    @app.post("/fhir")
    async def transaction(request: Request) -> Response:
        state.requests += 1
        if state.delay:
            await asyncio.sleep(state.delay)
        if state.plan:
            step = state.plan.pop(0)
            if step == "timeout":
                await asyncio.sleep(60)
            elif step.startswith("429"):
                wait = step.split(":", 1)[1] if ":" in step else "1"
                return Response(status_code=429, headers={"Retry-After": wait})
            elif step in ("500", "502", "503"):
                return _outcome(int(step), "the destination is having a bad day")
            elif step == "400":
                return _outcome(400, "refused by the fault plan")
        bundle = await request.json()
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
            return _outcome(400, "expected a transaction Bundle")
        entries = bundle.get("entry", [])
        for entry in entries:
            url = entry.get("request", {}).get("url", "")
            if url in state.reject_ids:
                return _outcome(422, f"{url} is refused by this destination")
        answers = []
        for entry in entries:
            method, url = entry["request"]["method"], entry["request"]["url"]
            state.entries += 1
            if method == "DELETE":
                if state.resources.pop(url, None) is not None:
                    state.log.append({"url": url, "method": "DELETE"})
                answers.append({"response": {"status": "204 No Content"}})
                continue
            version = _apply(state, url, entry["resource"])
            answers.append({"response": {"status": "201 Created" if version == 1 else "200 OK"}})
        return JSONResponse(
            {"resourceType": "Bundle", "type": "transaction-response", "entry": answers}, media_type=FHIR_JSON
        )

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="A fake FHIR destination with faults on demand")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8555)
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
