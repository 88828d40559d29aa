"""``kwg hl7 check`` and ``kwg hl7 purge`` as a person runs them."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent.parent / "fixtures" / "hl7v2"
KWG = str(Path(sys.executable).with_name("kwg"))


def run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KWG_")}
    return subprocess.run([KWG, *args], env={**clean, "KWG_HOME": str(home)}, capture_output=True, text=True)


def test_check_accepts_a_sample_and_rejects_a_message_without_control_id(tmp_path: Path) -> None:
    good = run("hl7", "check", str(FIXTURES / "ms__ADT-A01-01.hl7"), home=tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    assert ": 0 error(s)" in good.stdout
    bad = tmp_path / "bad.hl7"
    bad.write_bytes(b"MSH|^~\\&|PAS|RX1|KWG|KWG|20250101||ADT^A01||P|2.4\rEVN|A01\rPID|||1^^^RX1^MR")
    result = run("hl7", "check", str(bad), home=tmp_path)
    assert result.returncode == 1
    assert "error: MSH-10" in result.stdout


def test_check_reports_an_unreadable_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.hl7"
    garbage.write_bytes(b"hello")
    result = run("hl7", "check", str(garbage), home=tmp_path)
    assert result.returncode == 1
    assert "MSH" in result.stdout


def test_purge_removes_old_raw_content_only(tmp_path: Path) -> None:
    assert run("db", "upgrade", home=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "gateway.db") as conn:
        conn.executemany(
            "INSERT INTO hl7_message (sending_application, sending_facility, control_id, message_type, received_at,"
            " raw, status, attempts) VALUES ('PAS', 'RX1', ?, 'ADT^A01', ?, X'4D5348', ?, 1)",
            [("old", 0, "processed"), ("new", 2**62, "processed"), ("waiting", 0, "received")],
        )
    result = run("hl7", "purge", "--days", "30", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "purged the raw content of 1 message(s)" in result.stdout
    with sqlite3.connect(tmp_path / "gateway.db") as conn:
        raw = dict(conn.execute("SELECT control_id, raw FROM hl7_message").fetchall())
    assert raw == {"old": None, "new": b"MSH", "waiting": b"MSH"}
