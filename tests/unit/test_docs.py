"""The operations guide documents every setting, and the README's two commands exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name: str) -> None:
    assert f"`KWG_{name.upper()}`" in (ROOT / "docs" / "operations.md").read_text()


def test_readme_commands_exist_and_ci_calls_the_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "scripts/serve" in readme and "scripts/test" in readme
    assert (ROOT / "scripts" / "serve").stat().st_mode & 0o111
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_documentation_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    for target in ("docs/architecture.md", "docs/operations.md", "docs/fhir-api.md", "CHANGELOG.md"):
        assert target in readme
        assert (ROOT / target).exists(), target
