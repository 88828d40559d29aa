"""Finding the PostgreSQL and Redis servers the tests need.

Order: the URL in the environment (KWG_TEST_POSTGRES_URL / KWG_TEST_REDIS_URL), else the machine's default
(127.0.0.1:5432 database ``test`` / 127.0.0.1:6379), else a throwaway instance started from installed binaries
(``initdb``/``pg_ctl``, ``redis-server``). Under CI (``CI=true``) a missing server is an error, never a skip;
elsewhere the tests that need it are skipped with the reason printed.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass
class Server:
    url: str | None
    reason: str = ""


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, deadline_s: float = 20.0) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if _port_open("127.0.0.1", port):
            return True
        time.sleep(0.1)
    return False


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _throwaway_postgres() -> Server:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        return Server(None, "no PostgreSQL server reachable and no initdb/pg_ctl installed to start one")
    if os.geteuid() == 0:
        return Server(None, "no PostgreSQL server reachable; initdb refuses to run as root (set KWG_TEST_POSTGRES_URL)")
    data = tempfile.mkdtemp(prefix="kwg-pg-")
    port = _free_port()
    subprocess.run([initdb, "-D", data, "-A", "trust", "-U", "postgres"], check=True, capture_output=True)
    subprocess.run(
        [
            pg_ctl,
            "-D",
            data,
            "-o",
            f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off",
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    atexit.register(lambda: subprocess.run([pg_ctl, "-D", data, "-m", "immediate", "stop"], capture_output=True))
    return Server(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres")


def find_postgres() -> Server:
    url = os.environ.get("KWG_TEST_POSTGRES_URL")
    if url:
        return Server(url)
    if _port_open("127.0.0.1", 5432):
        return Server("postgresql+asyncpg://127.0.0.1:5432/test")
    if IN_CI:
        return Server(None, "PostgreSQL is not running on 127.0.0.1:5432 (required under CI)")
    return _throwaway_postgres()


def find_redis() -> Server:
    url = os.environ.get("KWG_TEST_REDIS_URL")
    if url:
        return Server(url)
    if _port_open("127.0.0.1", 6379):
        return Server("redis://127.0.0.1:6379/15")
    if IN_CI:
        return Server(None, "Redis is not running on 127.0.0.1:6379 (required under CI)")
    binary = shutil.which("redis-server")
    if not binary:
        return Server(None, "no Redis server reachable and no redis-server installed to start one")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(proc.terminate)
    if not _wait_port(port):
        return Server(None, "redis-server did not start")
    return Server(f"redis://127.0.0.1:{port}/0")
