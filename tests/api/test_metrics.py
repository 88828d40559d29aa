"""Prometheus /metrics: latency by route template (never a raw path with an id), deliveries, HL7 counts."""

from __future__ import annotations

import httpx


async def test_metrics_label_routes_by_template(client: httpx.AsyncClient) -> None:
    await client.get("/fhir/Patient/someone-in-particular")
    await client.get("/fhir/metadata")
    text = (await client.get("/metrics")).text
    assert (
        'kwg_http_request_duration_seconds_count{method="GET",route="/fhir/{res_type}/{res_id}",status="404"} 1.0'
        in text
    )
    assert 'route="/fhir/metadata"' in text
    assert "someone-in-particular" not in text
    assert "# TYPE kwg_deliveries gauge" in text and "# TYPE kwg_hl7_messages gauge" in text
