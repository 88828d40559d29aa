"""Real gateway processes for integration tests: ``kwg serve`` in a subprocess, ready when /health/ready says so."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.servers import _free_port

KWG = str(Path(sys.executable).with_name("kwg"))


@dataclass(frozen=True)
class RunningGateway:
    url: str  # the FHIR base, e.g. http://127.0.0.1:8123/fhir
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def scratch_postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty database on the test PostgreSQL server, dropped afterwards."""
    name = f"kwg_it_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(sql))
        await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def running_gateway(
    database_url: str | None = None,
    *,
    workers: int = 1,
    timeout_s: float = 60.0,
    env: dict[str, str] | None = None,
) -> Iterator[RunningGateway]:
    """``kwg serve`` on a free port (migrating first), its output in a log file; stopped with SIGTERM after."""
    home = tempfile.mkdtemp(prefix="kwg-it-")
    process_env = {k: v for k, v in os.environ.items() if not k.startswith("KWG_")}
    process_env["KWG_HOME"] = home
    process_env["KWG_AUTH"] = "off"  # tests of other features; a test of authentication passes KWG_AUTH=on
    process_env.update(env or {})
    if database_url:
        process_env["KWG_DATABASE_URL"] = database_url
    port = _free_port()
    log = Path(home) / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [KWG, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            env=process_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"kwg serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{base}/health/ready", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"kwg serve not ready after {timeout_s}s:\n{log.read_text()}")
            time.sleep(0.2)
        yield RunningGateway(f"{base}/fhir", process, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
