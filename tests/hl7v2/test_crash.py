"""kill -9 of a real ``kwg mllp`` process mid-stream: the sender resends what was not ACKed; nothing is lost or
stored twice. Runs on SQLite and on a scratch PostgreSQL database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import hl7.mllp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from tests.processes import KWG, scratch_postgres_database
from tests.servers import _free_port, find_postgres

SAMPLE = (Path(__file__).parent.parent / "fixtures" / "hl7v2" / "uk-synthetic-adt-a01.hl7").read_bytes()
MESSAGES = 240
KILL_AFTER = 100


def _message(i: int) -> bytes:
    lines = SAMPLE.replace(b"\n", b"\r").split(b"\r")
    fields = lines[0].split(b"|")
    fields[9] = f"CRASH{i:05d}".encode()
    return b"\r".join([b"|".join(fields), *lines[1:]])


class Listener:
    def __init__(self, database_url: str, home: str) -> None:
        self.port = _free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KWG_")}
        self.env.update(KWG_HOME=home, KWG_DATABASE_URL=database_url)
        self.log = Path(home) / "mllp.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout_s: float = 60.0) -> None:
        self.starts += 1
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [KWG, "mllp", "--host", "127.0.0.1", "--port", str(self.port), "--no-cohort-filter"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while self.log.read_text(errors="replace").count("MLLP listening") < self.starts:
            if self.process.poll() is not None:
                raise RuntimeError(f"kwg mllp exited with {self.process.returncode}:\n{self.log.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"kwg mllp not ready:\n{self.log.read_text()}")
            time.sleep(0.05)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def _database(kind: str) -> Iterator[tuple[str, str]]:
    home = tempfile.mkdtemp(prefix="kwg-mllp-")
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{home}/gateway.db", home
        return
    server = find_postgres()
    if server.url is None:
        pytest.skip(f"PostgreSQL not available: {server.reason}")
    with scratch_postgres_database(server.url) as url:
        yield url, home


async def _pas_sender(listener: Listener) -> tuple[list[str], int]:
    """Send every message, waiting for its ACK; on a broken connection reconnect and resend the un-ACKed one."""
    acked: list[str] = []
    resends = 0
    killed = False
    i = 0
    conn = None
    deadline = time.monotonic() + 120
    while i < MESSAGES:
        assert time.monotonic() < deadline, "sender gave up"
        try:
            if conn is None:
                conn = await hl7.mllp.open_hl7_connection("127.0.0.1", listener.port, encoding="utf-8")
            reader, writer = conn
            writer.writeblock(_message(i))
            await writer.drain()
            if i == KILL_AFTER and not killed:
                killed = True
                await asyncio.sleep(0.002)  # the frame is on its way (maybe stored, maybe not) when the process dies
                listener.kill9()
                await asyncio.to_thread(listener.start)
            ack = await asyncio.wait_for(reader.readmessage(), timeout=10)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            if conn is not None:
                await _close(conn[1])
            conn = None
            resends += 1
            await asyncio.sleep(0.05)
            continue
        msa = ack.segment("MSA")
        assert str(msa[1]) == "AA" and str(msa[2]) == f"CRASH{i:05d}"
        acked.append(str(msa[2]))
        i += 1
    if conn is not None:
        await _close(conn[1])
    return acked, resends


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_kill_9_mid_stream_loses_nothing_and_duplicates_nothing(kind: str) -> None:
    from gateway.store.hl7_tables import hl7_message

    with _database(kind) as (url, home):
        listener = Listener(url, home)
        listener.start()
        try:
            acked, resends = asyncio.run(_pas_sender(listener))
        finally:
            listener.stop()
        assert listener.starts == 2 and resends >= 1

        async def stored() -> list[str]:
            engine = create_async_engine(url)
            async with engine.connect() as conn:
                rows = (await conn.execute(select(hl7_message.c.control_id).order_by(hl7_message.c.id))).all()
            await engine.dispose()
            return [r[0] for r in rows]

        control_ids = asyncio.run(stored())
    expected = [f"CRASH{i:05d}" for i in range(MESSAGES)]
    assert acked == expected
    assert control_ids == expected  # every message exactly once, in the order sent
