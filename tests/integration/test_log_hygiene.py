"""No NHS number, name or address in any log line, across a full scenario with real processes.

``kwg serve`` (DEBUG logging) with its embedded sync worker, beat and relay; ``kwg demo`` loading young people
through the domain API; deliveries to a destination that refuses some of them (errors are logged); bad requests
carrying NHS numbers and names. Then every line the processes wrote is scanned for the young people's NHS numbers,
names and postcodes.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gateway.demo.population import population
from tests.processes import KWG, running_gateway
from tests.servers import _free_port, _wait_port

PEOPLE = 12


def test_a_full_scenario_logs_no_identifying_data(tmp_path: Path) -> None:
    dest_port = _free_port()
    destination = tmp_path / "destinations.toml"
    destination.write_text(
        '[[destination]]\nname = "record"\nconnector = "fhir"\n'
        f'endpoint = "http://127.0.0.1:{dest_port}/fhir"\nrecipient = "nhs-provider"\nmax_attempts = 2\n'
        "backoff_base_seconds = 0.1\nbackoff_max_seconds = 0.2\n"
    )
    people = list(population(seed=11, people=PEOPLE))
    with open(tmp_path / "destination.log", "wb") as out:
        fake = subprocess.Popen(
            [sys.executable, "-m", "connectors.fake.fhir_server", "--port", str(dest_port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        assert _wait_port(dest_port)
        # The destination refuses one young person's Patient and fails twice with 500: errors get logged.
        rejected = f"Patient/{people[0].person.id}"
        httpx.post(f"http://127.0.0.1:{dest_port}/_faults", json={"reject_ids": [rejected], "plan": ["500", "500"]})
        env = {"KWG_LOG_LEVEL": "DEBUG", "KWG_DESTINATIONS_FILE": str(destination)}
        with running_gateway(env=env) as gateway:
            base = gateway.url.removesuffix("/fhir")
            demo = subprocess.run(
                [KWG, "demo", "--url", base, "--people", str(PEOPLE), "--seed", "11"],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert demo.returncode == 0, demo.stderr
            with httpx.Client(timeout=30) as client:
                # Bad requests that carry identifying data in the body and the query.
                person = people[1].person
                bad = {**person.model_dump(mode="json", exclude_none=True), "id": None, "nhs_number": "999 000 0000"}
                client.post(f"{base}/api/v1/people", json={k: v for k, v in bad.items() if v is not None})
                client.get(f"{base}/api/v1/people", params={"nhs_number": person.nhs_number})
                client.get(
                    f"{gateway.url}/Patient",
                    params={"identifier": f"https://fhir.nhs.uk/Id/nhs-number|{person.nhs_number}"},
                )
                client.get(f"{gateway.url}/Patient", params={"family": person.name.family})
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    dead = client.get(f"{base}/admin/deliveries", params={"status": "dead"}).json()["items"]
                    if dead:
                        break
                    time.sleep(0.5)
                assert dead, "the refused delivery should be a dead letter by now"
            time.sleep(1)
        logs = gateway.log.read_text(errors="replace") + demo.stdout + demo.stderr
    finally:
        fake.terminate()
        fake.wait()
    assert "delivery to record lane" in logs  # the scan sees the worker's logs too (the 500s were logged)
    forbidden: list[str] = []
    for young_person in people:
        p = young_person.person
        assert p.nhs_number is not None
        forbidden += [p.nhs_number, f"{p.nhs_number[:3]} {p.nhs_number[3:6]} {p.nhs_number[6:]}"]
        forbidden += [f"{' '.join(p.name.given)} {p.name.family}", p.name.family]
        if p.postcode:
            forbidden.append(p.postcode)
    leaks = [word for word in forbidden if re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", logs)]
    lines = [line[:300] for line in logs.splitlines() if any(word in line for word in leaks)][:5]
    assert leaks == [], f"identifying data in the logs: {sorted(set(leaks))[:10]} in lines like {lines}"
