"""A fake local-authority children's social care API over HTTP, with faults on demand (tests and the demo).

    python -m connectors.fake.local_authority_server --port 8556

The API lives under ``/la`` (the connector's endpoint is ``http://host:port/la``):

- ``POST /la``: one change document (a JSON object) or a batch (a JSON array of them); 201 when stored. A
  document already held (same resource type, id and version) is not stored twice;
- ``GET /la/recommendations/{id}``: ``{"status": "..."}`` in the LA's own words, 404 when unknown;
- ``GET /la/health``.

Test controls, as the fake FHIR server's:

- ``GET /_log``: the documents stored in arrival order, and how many requests arrived;
- ``POST /_faults`` with ``{"plan": ["500", "429:2", "timeout", "400", "ok"], "delay": 0.0, "reject_ids": [...]}``
  (fields not given stay as they are): the next POSTs answer in that order, then normally; ``reject_ids``
  (``Type/id``) refuses any request holding such a document with 422;
- ``PUT /_recommendations/{id}`` with ``{"status": "in progress"}`` sets what the LA reports;
- ``POST /_reset``.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response


class FakeLocalAuthorityState:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.documents: list[dict[str, Any]] = []
        self.seen: set[tuple[Any, Any, Any]] = set()
        self.recommendations: dict[str, str] = {}
        self.requests = 0
        self.plan: list[str] = []
        self.delay = 0.0
        self.reject_ids: set[str] = set()


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app() -> FastAPI:
    app = FastAPI(title="Fake local authority API")
    state = FakeLocalAuthorityState()
    app.state.fake = state

    @app.post("/_faults")
    async def faults(request: Request) -> dict[str, Any]:
        body = await request.json()
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
        return {"documents": state.documents, "requests": state.requests, "plan": state.plan}

    @app.put("/_recommendations/{rec_id}")
    async def set_recommendation(rec_id: str, request: Request) -> dict[str, str]:
        body = await request.json()
        state.recommendations[rec_id] = str(body["status"])
        return {"id": rec_id, "status": state.recommendations[rec_id]}

    @app.get("/la/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/la/recommendations/{rec_id}")
    async def recommendation(rec_id: str) -> Response:
        if rec_id not in state.recommendations:
            return _problem(404, f"recommendation {rec_id} is not known")
        return JSONResponse({"id": rec_id, "status": state.recommendations[rec_id]})

    @app.post("/la")
    async def receive(request: Request) -> Response:
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
                return _problem(int(step), "the case system is having a bad day")
            elif step == "400":
                return _problem(400, "refused by the fault plan")
        try:
            body = await request.json()
        except ValueError:
            return _problem(400, "the body is not JSON")
        documents = body if isinstance(body, list) else [body]
        for doc in documents:
            if not isinstance(doc, dict) or not {"resource_type", "resource_id", "version_id"} <= doc.keys():
                return _problem(400, "a document needs resource_type, resource_id and version_id")
            if f"{doc['resource_type']}/{doc['resource_id']}" in state.reject_ids:
                return _problem(422, f"{doc['resource_type']}/{doc['resource_id']} is refused by this LA")
        for doc in documents:
            key = (doc["resource_type"], doc["resource_id"], doc["version_id"])
            if key not in state.seen:
                state.seen.add(key)
                state.documents.append(doc)
        return JSONResponse({"received": len(documents)}, status_code=201)

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="A fake local-authority API with faults on demand")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8556)
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
