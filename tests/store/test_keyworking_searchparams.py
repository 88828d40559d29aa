"""Our own search parameters: the registry is their one source, the published JSON says the same, the indexer
extracts what their FHIRPath selects, and ``reindex`` gives resources stored before them their rows."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import fhirpathpy
import pytest
from fhirpathpy.models import models as fhirpath_models
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.conformance.keyworking import search_parameter
from gateway.store import searchparams
from gateway.store.indexing import extract
from gateway.store.models import resource, sp_reference, sp_token
from gateway.store.reindex import reindex
from gateway.store.repository import SqlFhirRepository
from mappings.fhir import SUPPORTED_TYPES
from mappings.keyworking import urls
from mappings.keyworking.mapping import to_fhir
from mappings.keyworking.records import KeyworkingCase, Record, RegisterEntry, ReviewMeeting

ROOT = Path(__file__).parents[2]
PUBLISHED = ROOT / "profiles" / "keyworking"
RECORDS = ROOT / "tests" / "mappings" / "records"
KINDS: dict[str, type[Record]] = {
    "keyworking-case": KeyworkingCase,
    "register-entry": RegisterEntry,
    "review-meeting": ReviewMeeting,
}


def mapped() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, kind in KINDS.items():
        out += to_fhir(kind.model_validate_json((RECORDS / f"{name}.json").read_text()))
    return out


def test_the_published_search_parameters_are_the_registry_s() -> None:
    files = {path.name: json.loads(path.read_text()) for path in PUBLISHED.glob("SearchParameter-*.json")}
    ours = {
        f"SearchParameter-{param.url.rsplit('/', 1)[-1]}.json": search_parameter(base, param)
        for base, param in searchparams.KEYWORKING
    }
    assert files == ours
    for base, param in searchparams.KEYWORKING:
        assert searchparams.parameter(base, param.name) is param
        assert param.url.startswith(urls.BASE + "/SearchParameter/")


def test_every_served_type_declares_each_parameter_once() -> None:
    for res_type in SUPPORTED_TYPES:
        names = [p.name for p in searchparams.parameters_for(res_type)]
        assert len(names) == len(set(names)), res_type


@pytest.mark.parametrize(("base", "param"), searchparams.KEYWORKING, ids=lambda v: getattr(v, "name", v))
def test_the_index_holds_what_the_expression_selects(base: str, param: searchparams.SearchParameter) -> None:
    """fhirpathpy evaluates the published expression; the indexer must find the same values by its own walk."""
    expression = fhirpathpy.compile(searchparams.fhirpath(base, param), fhirpath_models["r4"])
    checked = 0
    for res in mapped():
        if res["resourceType"] != base:
            continue
        selected: list[Any] = expression(res, {})
        rows = extract(res)
        if param.type == searchparams.TOKEN:
            want = sorted((c.get("system"), c["code"]) for v in selected for c in v.get("coding", [v]))
            got = sorted((s, c) for n, s, c in rows.tokens if n == param.name)
        else:
            want = sorted((v["identifier"]["system"], v["identifier"]["value"]) for v in selected)
            got = sorted((s, c) for n, s, c in rows.tokens if n == f"{param.name}:identifier")
        assert got == want, res["id"]
        checked += bool(want)
    assert checked


def test_an_extension_step_reads_any_value_type_and_skips_other_urls() -> None:
    phase = {"system": urls.CS_KEYWORKING_PHASE, "code": "monitoring"}
    episode = {
        "resourceType": "EpisodeOfCare",
        "extension": [
            {"url": urls.EXT_INTENSIVE_CYCLE, "valuePositiveInt": 3},
            {"url": urls.EXT_KEYWORKING_PHASE, "valueCoding": phase},
        ],
        "statusHistory": [
            {
                "extension": [{"url": urls.EXT_KEYWORKING_PHASE, "valueCoding": {**phase, "code": "intensive"}}],
                "status": "active",
                "period": {"start": "2025-01-01"},
            }
        ],
    }
    rows = extract(episode)
    assert [t for t in rows.tokens if t[0] == "keyworking-phase"] == [
        ("keyworking-phase", urls.CS_KEYWORKING_PHASE, "monitoring")
    ]
    task = {
        "resourceType": "Task",
        "extension": [{"url": urls.EXT_OWNER_AGENCY, "valueReference": {"reference": "Organization/rgd"}}],
    }
    assert [r for r in extract(task).references if r[0] == "owner-agency"] == [
        ("owner-agency", "Organization", "rgd", None)
    ]
    wrong_target = {**task, "extension": [{"url": urls.EXT_OWNER_AGENCY, "valueReference": {"reference": "Patient/p"}}]}
    assert [r for r in extract(wrong_target).references if r[0] == "owner-agency"] == []


async def test_reindex_indexes_resources_stored_before_the_parameters(engine: AsyncEngine) -> None:
    repo = SqlFhirRepository(engine)
    tag = uuid.uuid4().hex[:8]
    written = [{**res, "id": f"{res['id'][:50]}-{tag}"} for res in mapped()]  # committed: ids of this run only
    mine = [r["id"] for r in written]

    async def found(res_type: str, name: str, value: str) -> list[str]:
        result = await repo.search(res_type, [(name, value), ("_id", ",".join(mine))])
        return sorted(r.res_id for r in result.matches)

    async with repo.transaction() as tx:
        for res in written:
            await tx.update(res["resourceType"], res["id"], res)
    try:
        ours = {p.name for _b, p in searchparams.KEYWORKING}
        ours |= {f"{name}:identifier" for name in ours}
        async with engine.begin() as conn:  # as if stored before the registry knew our parameters
            pks = list((await conn.execute(select(resource.c.pk).where(resource.c.res_id.in_(mine)))).scalars())
            for table in (sp_token, sp_reference):
                await conn.execute(delete(table).where(table.c.res_pk.in_(pks), table.c.param.in_(ours)))
        assert await found("EpisodeOfCare", "keyworking-phase", "intensive") == []
        assert await found("Flag", "rating", "red") == []

        await reindex(engine, ["EpisodeOfCare", "Flag", "Task"])

        assert await found("EpisodeOfCare", "keyworking-phase", "intensive") == [f"kw-amira-2025-{tag}"]
        assert len(await found("Flag", "rating", "red")) == 1
        assert len(await found("Task", "owner-agency:identifier", f"{urls.ODS_ORGANISATION}|RGD")) == 2
    finally:
        async with repo.transaction() as tx:
            for res in written:
                await tx.delete(res["resourceType"], res["id"])
