"""The rules of the house (docs/architecture.md) hold: import-linter walks the import graph.

The contracts live in pyproject.toml (``[tool.importlinter]``). The second test proves the check can fail: it
copies the packages to a scratch folder, adds one forbidden import, and expects import-linter to name it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_every_contract_is_kept() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("mappings/_probe.py", "import gateway.settings\n", "mappings are pure"),
        ("gateway/_probe.py", "import fhir.resources.R4B\n", "fhir.resources is imported only by mappings.fhir"),
        ("gateway/api/_probe.py", "import sqlalchemy\n", "API routes build no SQL"),
    ],
)
def test_a_forbidden_import_is_caught(tmp_path: Path, module: str, line: str, broken: str) -> None:
    for package in ("gateway", "mappings", "connectors"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / module).write_text(line)
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert f"{broken}" in result.stdout.replace("\n", " ")
    assert "BROKEN" in result.stdout
