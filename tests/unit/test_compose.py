"""docker-compose.yml stays valid (checked with Debian's docker-compose, which needs no engine)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.servers import IN_CI

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        if IN_CI:
            pytest.fail("docker-compose is not installed (.ci/run installs Debian's docker-compose)")
        pytest.skip("docker-compose is not installed here: install Debian's docker-compose package to check the file")
    return found


def _config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_compose(), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), **env},
        check=False,
    )


def test_compose_file_is_valid_with_a_database_password() -> None:
    result = _config({"KWG_DB_PASSWORD": "not-a-real-secret"})
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_a_database_password() -> None:
    result = _config({})
    assert result.returncode != 0
    assert "KWG_DB_PASSWORD" in result.stderr
