"""Every answer, success or error, carries the security headers; CORS stays off."""

from __future__ import annotations

import httpx

from gateway.api.security_headers import SECURITY_HEADERS


def _assert_guarded(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS:
        assert response.headers[name.decode()] == value.decode(), name
    assert not any(h.startswith("access-control-") for h in response.headers)


async def test_reads_writes_and_errors_are_guarded(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/fhir/Patient", json={"resourceType": "Patient"}, headers={"Origin": "https://evil.example"}
    )
    _assert_guarded(created)
    _assert_guarded(await client.get(f"/fhir/Patient/{created.json()['id']}"))
    _assert_guarded(await client.get("/fhir/Patient/unknown"))  # 404 OperationOutcome
    _assert_guarded(await client.get("/fhir/Patient", headers={"Accept": "application/xml"}))  # 406 from middleware
    _assert_guarded(await client.get("/health/live"))
    preflight = await client.options(
        "/fhir/Patient", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in preflight.headers
