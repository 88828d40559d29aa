"""The ``kwg`` command: help lists the commands; ``db upgrade`` creates the embedded database and can repeat;
bad settings stop it with a message naming the variable."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

KWG = str(Path(sys.executable).with_name("kwg"))


def run(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KWG_")}
    return subprocess.run(
        [KWG, *args], env={**clean, "KWG_HOME": str(home), **env}, capture_output=True, text=True, check=False
    )


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run("--help", home=tmp_path)
    assert result.returncode == 0
    for command in ("serve", "db", "validate"):
        assert command in result.stdout
    assert "upgrade" in run("db", "--help", home=tmp_path).stdout


def test_db_upgrade_creates_the_embedded_database_and_repeats(tmp_path: Path) -> None:
    first = run("db", "upgrade", home=tmp_path)
    assert first.returncode == 0, first.stderr
    database = tmp_path / "gateway.db"
    assert database.exists()
    with sqlite3.connect(database) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    assert {"resource", "resource_version", "sp_token", "sp_string", "sp_reference", "sp_date", "outbox"} <= tables
    second = run("db", "upgrade", home=tmp_path)
    assert second.returncode == 0, second.stderr
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == version
    reindexed = run("db", "reindex", home=tmp_path)
    assert reindexed.returncode == 0 and "reindexed 0 resources" in reindexed.stdout


def test_bad_settings_name_the_variable(tmp_path: Path) -> None:
    result = run("db", "upgrade", home=tmp_path, KWG_DEFAULT_PAGE_SIZE="-1")
    assert result.returncode != 0
    assert "configuration error: KWG_DEFAULT_PAGE_SIZE" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "gateway.db").exists()
