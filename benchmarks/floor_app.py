"""The floor: the least a Python server must do to answer the benchmark's lookups from the same tables.

A bare Starlette app on uvicorn (run with the gateway's worker count) and an asyncpg pool, no framework, no
repository, no search compiler, no validation: one hand-written SQL statement per lookup (asyncpg prepares and
caches it), the stored bytes from ``resource.content`` spliced into a minimal searchset Bundle. It answers only
the five request shapes the benchmark sends, at the gateway's paths, so one list of paths drives both:

- ``GET /fhir/{type}/{id}``
- ``GET /fhir/Patient?identifier=system|value``
- ``GET /fhir/CareTeam?patient.identifier=system|value&status=active``
- ``GET /fhir/EpisodeOfCare?patient=id&status=active&_include=EpisodeOfCare:care-manager``
- ``GET /fhir/Encounter?patient=id&date=geYYYY-MM-DD&_sort=-date&_count=n``

Run: ``KWG_BENCH_FLOOR_DSN=postgresql://... uvicorn benchmarks.floor_app:create_app --factory --workers 2``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

FHIR_JSON = "application/fhir+json"

READ = "SELECT version_id, last_updated, content FROM resource WHERE res_type = $1 AND res_id = $2"

BY_IDENTIFIER = """
SELECT r.res_id, r.content FROM resource r
WHERE r.res_type = 'Patient' AND NOT r.deleted AND r.pk IN (
  SELECT s.res_pk FROM sp_token s
  WHERE s.res_type = 'Patient' AND s.param = 'identifier' AND s.code = $2 AND s.system = $1)
ORDER BY r.pk LIMIT $3
"""

CARE_TEAM_BY_PATIENT_IDENTIFIER = """
SELECT r.res_id, r.content FROM resource r
WHERE r.res_type = 'CareTeam' AND NOT r.deleted
  AND r.pk IN (
    SELECT c.res_pk FROM sp_reference c JOIN resource p ON p.res_type = c.target_type AND p.res_id = c.target_id
    WHERE c.res_type = 'CareTeam' AND c.param = 'patient' AND p.res_type = 'Patient' AND NOT p.deleted
      AND p.pk IN (SELECT s.res_pk FROM sp_token s
                   WHERE s.res_type = 'Patient' AND s.param = 'identifier' AND s.code = $2 AND s.system = $1))
  AND r.pk IN (SELECT s.res_pk FROM sp_token s WHERE s.res_type = 'CareTeam' AND s.param = 'status' AND s.code = $3)
ORDER BY r.pk LIMIT $4
"""

EPISODES_BY_PATIENT = """
SELECT r.pk, r.res_id, r.content FROM resource r
WHERE r.res_type = 'EpisodeOfCare' AND NOT r.deleted
  AND r.pk IN (SELECT s.res_pk FROM sp_reference s WHERE s.res_type = 'EpisodeOfCare' AND s.param = 'patient'
               AND s.target_type = 'Patient' AND s.target_id = $1)
  AND r.pk IN (SELECT s.res_pk FROM sp_token s WHERE s.res_type = 'EpisodeOfCare' AND s.param = 'status'
               AND s.code = $2)
ORDER BY r.pk LIMIT $3
"""

CARE_MANAGERS = """
SELECT DISTINCT r.pk, r.res_type, r.res_id, r.content FROM sp_reference s
JOIN resource r ON r.res_type = s.target_type AND r.res_id = s.target_id
WHERE s.res_pk = ANY($1::bigint[]) AND s.param = 'care-manager' AND NOT r.deleted
ORDER BY r.pk
"""

ENCOUNTERS_SINCE = """
SELECT r.res_id, r.content FROM resource r JOIN sp_date d ON d.res_pk = r.pk AND d.param = 'date'
WHERE r.res_type = 'Encounter' AND NOT r.deleted
  AND r.pk IN (SELECT s.res_pk FROM sp_reference s WHERE s.res_type = 'Encounter' AND s.param = 'patient'
               AND s.target_type = 'Patient' AND s.target_id = $1)
  AND d.high >= $2
ORDER BY d.low DESC, r.pk LIMIT $3
"""


def _entry(base: str, res_type: str, res_id: str, content: bytes, mode: str) -> bytes:
    url = orjson.dumps(f"{base}/{res_type}/{res_id}")
    return b'{"fullUrl":' + url + b',"resource":' + content + b',"search":{"mode":"' + mode.encode() + b'"}}'


def _bundle(request: Request, entries: list[bytes], total: int) -> Response:
    head = orjson.dumps({"resourceType": "Bundle", "type": "searchset", "total": total, "link": [
        {"relation": "self", "url": str(request.url)}
    ]})  # fmt: skip
    body = head[:-1] + b',"entry":[' + b",".join(entries) + b"]}" if entries else head
    return Response(body, media_type=FHIR_JSON)


def _bad(message: str) -> Response:
    return Response(orjson.dumps({"error": message}), status_code=400, media_type="application/json")


def _system_code(value: str) -> tuple[str, str]:
    system, _, code = value.partition("|")
    return system, code


def _day_start_us(value: str) -> int:
    day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    return int(day.timestamp()) * 1_000_000


async def read(request: Request) -> Response:
    res_type, res_id = request.path_params["res_type"], request.path_params["res_id"]
    row = await request.app.state.pool.fetchrow(READ, res_type, res_id)
    if row is None or row["content"] is None:
        return Response(status_code=404)
    updated = datetime.fromtimestamp(row["last_updated"] / 1_000_000, tz=UTC)
    headers = {"ETag": f'W/"{row["version_id"]}"', "Last-Modified": format_datetime(updated, usegmt=True)}
    return Response(row["content"], media_type=FHIR_JSON, headers=headers)


async def search(request: Request) -> Response:
    res_type = request.path_params["res_type"]
    q = request.query_params
    pool: asyncpg.Pool = request.app.state.pool
    base = str(request.base_url).rstrip("/") + "/fhir"
    count = int(q.get("_count", "20"))
    if res_type == "Patient" and "identifier" in q:
        rows = await pool.fetch(BY_IDENTIFIER, *_system_code(q["identifier"]), count)
        entries = [_entry(base, res_type, r["res_id"], r["content"], "match") for r in rows]
        return _bundle(request, entries, len(entries))
    if res_type == "CareTeam" and "patient.identifier" in q:
        system, code = _system_code(q["patient.identifier"])
        rows = await pool.fetch(CARE_TEAM_BY_PATIENT_IDENTIFIER, system, code, q.get("status", "active"), count)
        entries = [_entry(base, res_type, r["res_id"], r["content"], "match") for r in rows]
        return _bundle(request, entries, len(entries))
    if res_type == "EpisodeOfCare" and "patient" in q:
        async with pool.acquire() as conn:
            rows = await conn.fetch(EPISODES_BY_PATIENT, q["patient"], q.get("status", "active"), count)
            included: list[Any] = []
            if rows and q.get("_include") == "EpisodeOfCare:care-manager":
                included = await conn.fetch(CARE_MANAGERS, [r["pk"] for r in rows])
        entries = [_entry(base, res_type, r["res_id"], r["content"], "match") for r in rows]
        entries += [_entry(base, r["res_type"], r["res_id"], r["content"], "include") for r in included]
        return _bundle(request, entries, len(rows))
    if res_type == "Encounter" and "patient" in q and q.get("date", "").startswith("ge"):
        since = _day_start_us(q["date"][2:])
        rows = await pool.fetch(ENCOUNTERS_SINCE, q["patient"], since, count)
        entries = [_entry(base, res_type, r["res_id"], r["content"], "match") for r in rows]
        return _bundle(request, entries, len(entries))
    return _bad("the floor answers only the benchmark's search shapes")


async def ready(request: Request) -> Response:
    await request.app.state.pool.fetchval("SELECT 1")
    return Response(b'{"status":"ok"}', media_type="application/json")


def create_app() -> Starlette:
    dsn = os.environ.get("KWG_BENCH_FLOOR_DSN", "postgresql://root@127.0.0.1:5432/kwg_bench")
    size = int(os.environ.get("KWG_BENCH_FLOOR_POOL", "20"))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(dsn, min_size=size, max_size=size)
        try:
            yield
        finally:
            await app.state.pool.close()

    return Starlette(
        routes=[
            Route("/health/ready", ready),
            Route("/fhir/{res_type}", search),
            Route("/fhir/{res_type}/{res_id}", read),
        ],
        lifespan=lifespan,
    )
