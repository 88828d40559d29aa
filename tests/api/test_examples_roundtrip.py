"""The official FHIR R4 and UK Core examples are stored and read back unchanged apart from ``meta``.

Each example is PUT at its own id over HTTP, read back and vread, and compared with the original as parsed JSON
(every element, in every array position). ``meta`` may gain ``versionId`` and ``lastUpdated``; whatever else the
example had in ``meta`` (profiles, tags, security labels) must come back as sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.conformance.elements import Navigator
from gateway.conformance.fhirxml import FhirXmlConverter
from gateway.conformance.loader import default_definitions

FIXTURES = Path(__file__).parent.parent / "fixtures" / "fhir" / "r4"
UKCORE_XML = Path(__file__).parent.parent / "conformance" / "fixtures" / "ukcore-examples"
R4_EXAMPLES = sorted(FIXTURES.glob("*.json"))
UKCORE_EXAMPLES = sorted(UKCORE_XML.glob("*.xml"))
FHIR_JSON = {"content-type": "application/fhir+json"}


def test_the_fixtures_are_all_here() -> None:
    assert len(R4_EXAMPLES) == 120
    assert len(UKCORE_EXAMPLES) >= 29


def _without_meta_extras(resource: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    body = {k: v for k, v in resource.items() if k != "meta"}
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    return body, meta


async def _round_trip(client: httpx.AsyncClient, original: dict[str, Any]) -> None:
    res_type, res_id = original["resourceType"], original["id"]
    put = await client.put(f"/fhir/{res_type}/{res_id}", content=orjson.dumps(original), headers=FHIR_JSON)
    assert put.status_code in (200, 201), put.text
    read = await client.get(f"/fhir/{res_type}/{res_id}")
    assert read.status_code == 200
    stored = read.json()
    assert _without_meta_extras(stored) == _without_meta_extras(original)
    assert stored["meta"]["versionId"] == "1"
    assert read.headers["etag"] == 'W/"1"'
    vread = await client.get(f"/fhir/{res_type}/{res_id}/_history/1")
    assert vread.json() == stored


@pytest.mark.parametrize("path", R4_EXAMPLES, ids=[p.stem for p in R4_EXAMPLES])
async def test_r4_example_round_trips(client: httpx.AsyncClient, path: Path) -> None:
    await _round_trip(client, orjson.loads(path.read_bytes()))


@pytest.fixture(scope="module")
def converter() -> FhirXmlConverter:
    return FhirXmlConverter(Navigator(default_definitions()))


@pytest.mark.parametrize("path", UKCORE_EXAMPLES, ids=[p.stem for p in UKCORE_EXAMPLES])
async def test_ukcore_example_round_trips(client: httpx.AsyncClient, converter: FhirXmlConverter, path: Path) -> None:
    await _round_trip(client, converter.convert(path.read_bytes()))
