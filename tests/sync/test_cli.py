"""Bad sync configuration stops the processes with one clear line per problem; an unreachable destination is named."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.processes import KWG
from tests.servers import _free_port


def run(args: list[str], tmp_path: Path, destinations: str, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "destinations.toml").write_text(destinations)
    process_env = {k: v for k, v in os.environ.items() if not k.startswith("KWG_")}
    process_env |= {"KWG_HOME": str(tmp_path), "KWG_DESTINATIONS_FILE": str(tmp_path / "destinations.toml"), **env}
    return subprocess.run([KWG, *args], env=process_env, capture_output=True, text=True, timeout=60, check=False)


def destination(**fields: str) -> str:
    values = {"name": "ics", "connector": "fhir", "endpoint": "http://127.0.0.1:9/fhir", "recipient": "nhs-provider"}
    values.update(fields)
    return "[[destination]]\n" + "".join(f'{k} = "{v}"\n' for k, v in values.items())


def test_an_unknown_connector_stops_the_worker(tmp_path: Path) -> None:
    result = run(["worker"], tmp_path, destination(connector="carrier-pigeon"))
    assert result.returncode == 2
    assert "KWG_DESTINATIONS_FILE: destination ics: connector: unknown connector 'carrier-pigeon'" in result.stderr


def test_a_missing_secret_stops_the_worker(tmp_path: Path) -> None:
    result = run(["worker"], tmp_path, destination(bearer_token_env="KWG_SECRET_ICS"))
    assert result.returncode == 2
    assert "destination ics: bearer_token_env: KWG_SECRET_ICS is not set in the environment" in result.stderr


def test_a_bad_file_stops_serve_with_the_field_named(tmp_path: Path) -> None:
    result = run(["serve", "--port", str(_free_port())], tmp_path, destination(recipient="everyone"))
    assert result.returncode == 2
    assert "destination ics: recipient:" in result.stderr


def test_an_unreachable_destination_is_named(tmp_path: Path) -> None:
    port = _free_port()  # nothing listens there
    result = run(["destinations", "check"], tmp_path, destination(endpoint=f"http://127.0.0.1:{port}/fhir"))
    assert result.returncode == 1
    assert "ics: unreachable" in result.stderr and "ConnectError" in result.stderr
