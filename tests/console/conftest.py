"""The console's browser tests: a real ``kwg serve`` (embedded sync worker, MLLP listener) with a fake FHIR
destination, loaded with the scenario in :mod:`tests.console.scenario`, driven by Debian's Chromium through
Playwright. Without Chromium the browser tests skip with the reason; under CI (``CI=true``) that is a failure."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.console import scenario
from tests.processes import KWG, running_gateway
from tests.servers import IN_CI, _free_port, _wait_port

CHROMIUM = Path(os.environ.get("KWG_TEST_CHROMIUM", "/usr/bin/chromium"))
OPERATOR, PASSWORD = "ops.tester", "a-long-test-password-1"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
API_DESTINATION = {"name": "council-record", "connector": "fhir", "recipient": "local-authority", "enabled": False}
SUBSCRIPTION = {
    "resourceType": "Subscription",
    "id": "errored-flags",
    "status": "requested",
    "reason": "flags entered in error",
    "criteria": "Flag?status=entered-in-error",
}


def chromium_or_skip() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    reason = f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium; or set KWG_TEST_CHROMIUM)"
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass(frozen=True)
class ConsoleGateway:
    base: str  # http://127.0.0.1:<port>
    home: Path
    destination: str  # the fake FHIR destination's base


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"waited {timeout}s for {what}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def console_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleGateway]:
    chromium_or_skip()
    folder = tmp_path_factory.mktemp("console")
    dest_port, mllp_port = _free_port(), _free_port()
    destinations = folder / "destinations.toml"
    destinations.write_text(
        '[[destination]]\nname = "trust-record"\nconnector = "fhir"\n'
        f'endpoint = "http://127.0.0.1:{dest_port}/fhir"\nrecipient = "nhs-provider"\nmax_attempts = 2\n'
        "backoff_base_seconds = 0.1\nbackoff_max_seconds = 0.2\n"
    )
    destination = f"http://127.0.0.1:{dest_port}"
    with open(folder / "destination.log", "wb") as out:
        fake = subprocess.Popen(
            [sys.executable, "-m", "connectors.fake.fhir_server", "--port", str(dest_port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        assert _wait_port(dest_port), "the fake destination did not start"
        httpx.post(f"{destination}/_faults", json={"reject_ids": [f"Patient/{scenario.POISON}"]})
        env = {
            "KWG_DESTINATIONS_FILE": str(destinations),
            "KWG_MLLP_ENABLED": "true",
            "KWG_MLLP_PORT": str(mllp_port),
            "KWG_HL7_MENTAL_HEALTH_WARDS": "MHU1",
            "KWG_LOG_LEVEL": "WARNING",
        }
        with running_gateway(env=env) as gateway:
            base = gateway.url.removesuffix("/fhir")
            home = gateway.log.parent
            added = subprocess.run(
                [KWG, "console", "add-operator", OPERATOR, "--organisation", "QX9", "--password-stdin"],
                input=PASSWORD + "\n",
                env={**{k: v for k, v in os.environ.items() if not k.startswith("KWG_")}, "KWG_HOME": str(home)},
                capture_output=True,
                text=True,
                check=False,
            )
            assert added.returncode == 0, added.stderr
            with httpx.Client(base_url=base, timeout=30) as client:
                scenario.load_people(client)
                assert _wait_port(mllp_port), "the MLLP listener did not start"
                assert asyncio.run(scenario.send_admission(mllp_port)) == "AA"

                def admitted() -> bool:
                    items = client.get("/api/v1/register-entries/dsr-amira-2025/ratings").json()["items"]
                    return bool(items) and items[-1]["rating"] == "blue"

                wait_for(admitted, 60, "the admission to reach the register")

                def dead_letter() -> bool:
                    return bool(client.get("/admin/deliveries", params={"status": "dead"}).json()["items"])

                wait_for(dead_letter, 60, "the refused Patient to become a dead letter")
                # A destination made through the API (disabled: it takes nothing from the scenario) and a FHIR
                # Subscription that nothing matches: the destinations page lists them beside the file's.
                made = {**API_DESTINATION, "endpoint": f"{destination}/fhir"}
                assert client.post("/admin/destinations", json=made).status_code == 201
                hook = {**SUBSCRIPTION, "channel": {"type": "rest-hook", "endpoint": f"{destination}/hook"}}
                answer = client.put(f"/fhir/Subscription/{SUBSCRIPTION['id']}", json=hook, headers=FHIR_JSON)
                assert answer.status_code == 201, answer.text
            yield ConsoleGateway(base, home, destination)
    finally:
        fake.terminate()
        fake.wait()


@pytest.fixture(scope="module")
def browser(console_gateway: ConsoleGateway) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    try:
        yield context.new_page()
    finally:
        context.close()
