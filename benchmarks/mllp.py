"""MLLP listener benchmark: a PAS-like sender (send, wait for the ACK, send the next) against ``kwg mllp``.

``python -m benchmarks.mllp`` creates a scratch PostgreSQL database, starts ``kwg mllp`` (cohort filter off, so
every message is committed to the inbox before its ACK) and python-hl7's ``start_hl7_server`` (parse +
``create_ack``, no storage at all: a baseline that flatters python-hl7), drives each with the same sender on 1 and
16 connections, and prints msg/s, p50/p99 ACK latency and the ratio. Afterwards it checks that the inbox holds
exactly the messages that were ACKed.

Each server runs in its own process, the sender in this one; on a 2-core machine they share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

SAMPLE = Path(__file__).parent.parent / "tests" / "fixtures" / "hl7v2" / "uk-synthetic-adt-a01.hl7"
KWG = str(Path(sys.executable).with_name("kwg"))
FRAME_END = b"\x1c\r"


@dataclass(frozen=True)
class Result:
    server: str
    connections: int
    messages: int
    seconds: float
    p50_ms: float
    p99_ms: float
    not_aa: int
    warm_acked: int = 0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def _message_template() -> tuple[bytes, bytes]:
    text = SAMPLE.read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r").strip(b"\r")
    first, rest = text.split(b"\r", 1)
    fields = first.split(b"|")
    return b"|".join(fields[:9]) + b"|", b"|" + b"|".join(fields[10:]) + b"\r" + rest


async def _sender(port: int, prefix: str, seconds: float, latencies: list[int]) -> tuple[int, int]:
    head, tail = _message_template()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = not_aa = 0
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        control = f"{prefix}{sent:07d}".encode()
        start = time.perf_counter_ns()
        writer.write(b"\x0b" + head + control + tail + FRAME_END)
        ack = await reader.readuntil(FRAME_END)
        latencies.append(time.perf_counter_ns() - start)
        if b"MSA|AA|" + control not in ack:
            not_aa += 1
        sent += 1
    writer.close()
    await writer.wait_closed()
    return sent, not_aa


async def _drive(name: str, port: int, connections: int, seconds: float, run: str) -> Result:
    # Control ids unique per run, connection count and connection: a repeat would be a duplicate (stored once).
    warm = await asyncio.gather(
        *(_sender(port, f"W{run}{connections:02d}{c:02d}", 0.3, []) for c in range(connections))
    )
    latencies: list[int] = []
    started = time.perf_counter()
    counts = await asyncio.gather(
        *(_sender(port, f"{run}{connections:02d}{c:02d}-", seconds, latencies) for c in range(connections))
    )
    elapsed = time.perf_counter() - started
    lat = sorted(latencies)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] / 1e6
    return Result(
        name,
        connections,
        sum(c[0] for c in counts),
        elapsed,
        statistics.median(lat) / 1e6,
        p99,
        sum(c[1] for c in counts),
        sum(w[0] - w[1] for w in warm),
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server not listening:\n{log.read_text()}")


def _start(cmd: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    _wait_port(port, process, log)
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- the python-hl7 baseline server (run as a subprocess of this module) -------------------------------------------


async def _baseline_server(port: int) -> None:
    import hl7.mllp

    async def handle(reader: hl7.mllp.HL7StreamReader, writer: hl7.mllp.HL7StreamWriter) -> None:
        try:
            while not writer.is_closing():
                message = await reader.readmessage()
                writer.writemessage(message.create_ack())
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    server = await hl7.mllp.start_hl7_server(handle, "127.0.0.1", port, encoding="utf-8")
    async with server:
        await server.serve_forever()


# -- the run -------------------------------------------------------------------------------------------------------


async def _admin(url: str, sql: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


async def _durability(url: str) -> tuple[str, int]:
    from gateway.store.hl7_tables import hl7_message

    engine = create_async_engine(url)
    async with engine.connect() as conn:
        shown = []
        for name in ("fsync", "synchronous_commit", "wal_sync_method"):
            shown.append(f"{name}={(await conn.execute(text(f'SHOW {name}'))).scalar_one()}")
        settings = ", ".join(shown)
        stored = (await conn.execute(select(func.count()).select_from(hl7_message))).scalar_one()
    await engine.dispose()
    return settings, int(stored)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each measurement")
    parser.add_argument("--connections", type=int, nargs="*", default=[1, 16])
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("KWG_BENCH_PG_URL", "postgresql+asyncpg://root@127.0.0.1:5432/test"),
        help="PostgreSQL server where a scratch database is created (and dropped)",
    )
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        asyncio.run(_baseline_server(args.serve_baseline))
        return

    name = f"kwg_bench_mllp_{uuid.uuid4().hex[:8]}"
    url = args.admin_url.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(_admin(args.admin_url, f'CREATE DATABASE "{name}"'))
    logs = Path(tempfile.mkdtemp(prefix="kwg-bench-mllp-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KWG_")}
    env.update(KWG_HOME=str(logs), KWG_DATABASE_URL=url, KWG_LOG_LEVEL="WARNING")
    kwg_port, base_port = _free_port(), _free_port()
    results: list[Result] = []
    try:
        kwg = _start(
            [KWG, "mllp", "--host", "127.0.0.1", "--port", str(kwg_port), "--no-cohort-filter"],
            env,
            kwg_port,
            logs / "kwg-mllp.log",
        )
        base = _start(
            [sys.executable, "-m", "benchmarks.mllp", "--serve-baseline", str(base_port)],
            env,
            base_port,
            logs / "baseline.log",
        )
        try:
            run = uuid.uuid4().hex[:4]
            for n in args.connections:
                results.append(
                    asyncio.run(_drive("kwg mllp (PostgreSQL, durable ACK)", kwg_port, n, args.seconds, run))
                )
                results.append(asyncio.run(_drive("python-hl7 start_hl7_server", base_port, n, args.seconds, run)))
        finally:
            _stop(kwg)
            _stop(base)
        durability, stored = asyncio.run(_durability(url))
    finally:
        asyncio.run(_admin(args.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    print(f"MLLP, PAS-like sender (send, wait for ACK, send next), {args.seconds:.0f} s each, {os.cpu_count()} CPUs")
    print(f"PostgreSQL: {durability}; load average at the end: {os.getloadavg()[0]:.2f} (machine shared)")
    print(f"{'server':<38} {'conns':>5} {'msg/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'not AA':>7}")
    for r in results:
        print(f"{r.server:<38} {r.connections:>5} {r.rate:>9.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.not_aa:>7}")
    for n in args.connections:
        ours = next(r for r in results if r.connections == n and r.server.startswith("kwg"))
        theirs = next(r for r in results if r.connections == n and not r.server.startswith("kwg"))
        print(f"{n:>2} connection(s): kwg mllp / python-hl7 = {ours.rate / theirs.rate:.2f}x")
    kwg_acked = sum(r.messages - r.not_aa + r.warm_acked for r in results if r.server.startswith("kwg"))
    verdict = "every ACKed message is stored, once" if stored == kwg_acked else "MISMATCH"
    print(f"inbox rows: {stored}; messages ACKed AA (warm-up included): {kwg_acked}: {verdict}")
    targets = {1: 1500.0, 16: 5000.0}
    for r in results:
        if r.server.startswith("kwg") and r.connections in targets:
            verdict = "met" if r.rate >= targets[r.connections] and r.p99_ms <= 5.0 else "NOT met"
            print(f"target {targets[r.connections]:.0f} msg/s, p99 <= 5 ms on {r.connections} connection(s): {verdict}")


if __name__ == "__main__":
    main()
