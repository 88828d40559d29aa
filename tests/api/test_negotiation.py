"""Formats the gateway refuses, and request size limits."""

from __future__ import annotations

import httpx

from gateway.settings import Settings


async def test_xml_format_is_not_acceptable(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/metadata", params={"_format": "xml"})
    assert r.status_code == 406
    assert r.json()["resourceType"] == "OperationOutcome"
    assert r.json()["issue"][0]["code"] == "not-supported"


async def test_accept_header_without_json_is_not_acceptable(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/Patient", headers={"Accept": "application/fhir+xml"})
    assert r.status_code == 406


async def test_json_accept_variants_are_served(client: httpx.AsyncClient) -> None:
    for accept in ("application/fhir+json", "application/json", "*/*", "application/fhir+json; fhirVersion=4.0"):
        r = await client.get("/fhir/metadata", headers={"Accept": accept})
        assert r.status_code == 200, accept
    r = await client.get("/fhir/metadata", params={"_format": "json"})
    assert r.status_code == 200


async def test_oversized_body_is_refused_before_anything_is_stored(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    limit = settings.max_request_bytes
    big = '{"resourceType":"Patient","id":"big","text":{"status":"generated","div":"' + "x" * limit + '"}}'
    r = await client.put("/fhir/Patient/big", content=big, headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 413
    assert r.json()["issue"][0]["code"] == "too-costly"
    assert (await client.get("/fhir/Patient/big")).status_code == 404
