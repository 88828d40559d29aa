"""The HL7 v2 pipeline beyond the listener: the hot-path filter's speed, and a mixed feed reaching the FHIR store.

    .venv/bin/python -m benchmarks.hl7_pipeline                   # about a minute
    .venv/bin/python -m benchmarks.hl7_pipeline --messages 5000

1. Tokenizer plus cohort filter, one core: ``peek`` (MSH and PID-3 only) and a cohort lookup (the listener's
   cached answer) over a trust-like feed; baseline in the same run: hl7apy parsing the same messages (what a
   listener without the cheap first look would do for every message). Target: ≥ 20,000 msg/s/core.
2. A mixed feed: ``kwg serve`` on PostgreSQL with the MLLP listener, a ``kwg worker`` on Redis, 50 young people on
   the register; a PAS-like sender sends ``--messages`` ADT messages of which 2 % are about them (admissions to a
   mental-health ward, so alerts run too), the rest about strangers. For each cohort message: from its commit in
   the inbox to its processing into the store (Encounter, Provenance, rating, Tasks): p50/p99. Target: p99 ≤ 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from benchmarks.transaction_ingest import DEFAULT_POSTGRES, _admin
from mappings.hl7v2.tokenizer import peek
from mappings.identifiers import nhs_number_check_digit

KWG = str(Path(sys.executable).with_name("kwg"))
START, END = b"\x0b", b"\x1c\r"


def nhs_number(n: int) -> str:
    base = 999_100_000 + n * 3
    while (check := nhs_number_check_digit(str(base))) is None:
        base += 1
    return f"{base}{check}"


def message(n: int, nhs: str, ward: str) -> str:
    when = "20260710143000"
    return "\r".join(
        [
            f"MSH|^~\\&|PAS|RX4|KWG|KWG|{when}||ADT^A01^ADT_A01|M{n}|P|2.4",
            f"EVN|A01|{when}",
            f"PID|1||{nhs}^^^NHS^NH~L{n}^^^RX4^PI||PERSON^N||20100101|F",
            f"PV1|1|I|{ward}^BAY1^BED{n % 20}^RX4||||||||||||||||V{n}",
        ]
    )


def filter_speed(count: int) -> tuple[float, float]:
    feed = [message(n, nhs_number(n), "GEN1") for n in range(2000)]
    cohort = {nhs_number(n) for n in range(0, 2000, 50)}
    started, kept = time.perf_counter(), 0
    for i in range(count):
        envelope = peek(feed[i % len(feed)])
        kept += envelope.nhs_number in cohort
    fast = count / (time.perf_counter() - started)
    from hl7apy.parser import parse_message

    sample = min(300, len(feed))
    started = time.perf_counter()
    for i in range(sample):
        parse_message(feed[i], find_groups=False)
    full = sample / (time.perf_counter() - started)
    return fast, full


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


async def send_feed(port: int, messages: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for text_ in messages:
        writer.write(START + text_.encode() + END)
        await writer.drain()
        await reader.readuntil(END)
    writer.close()
    await writer.wait_closed()


async def latencies(url: str) -> list[float]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT processed_at - received_at FROM hl7_message WHERE status = 'processed' ORDER BY id")
            )
        ).all()
    await engine.dispose()
    return [r[0] / 1e6 for r in rows]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def mixed_feed(args: argparse.Namespace, url: str, home: Path) -> tuple[list[float], float]:
    api_port, mllp_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KWG_")} | {
        "KWG_HOME": str(home),
        "KWG_DATABASE_URL": url,
        "KWG_BROKER_URL": args.redis,
        "KWG_LOG_LEVEL": "WARNING",
        "KWG_MLLP_ENABLED": "true",
        "KWG_MLLP_PORT": str(mllp_port),
        "KWG_HL7_MENTAL_HEALTH_WARDS": "MHU1",
        "KWG_SWEEP_INTERVAL": "1",
        "KWG_AUTH": "off",
    }
    procs = []
    with open(home / "serve.log", "ab") as log:
        procs.append(
            subprocess.Popen(
                [KWG, "serve", "--port", str(api_port)], env=env, stdout=log, stderr=log, start_new_session=True
            )
        )
        procs.append(
            subprocess.Popen(
                [KWG, "worker", "--concurrency", "1", "--loglevel", "WARNING"],
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        )
    try:
        base = f"http://127.0.0.1:{api_port}"
        wait_http(f"{base}/health/ready")
        cohort = list(range(0, args.messages, 50))  # 2 %
        with httpx.Client(base_url=base, timeout=30) as client:
            for n in cohort:
                person = {
                    "nhs_number": nhs_number(n),
                    "name": {"family": "Cohort"},
                    "birth_date": "2012-01-01",
                    "sex": "female",
                }
                pid = client.post("/api/v1/people", json=person).json()["id"]
                entry = {"person_id": pid, "status": "on-register", "referred_on": "2026-01-05"}
                client.post("/api/v1/register-entries", json=entry).raise_for_status()
        feed = [message(n, nhs_number(n), "MHU1" if n in cohort else "GEN1") for n in range(args.messages)]
        started = time.perf_counter()
        asyncio.run(send_feed(mllp_port, feed))
        sent = time.perf_counter() - started
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = asyncio.run(latencies(url))
            if len(done) >= len(cohort):
                return done, len(feed) / sent
            time.sleep(0.5)
        raise RuntimeError(f"only {len(done)} of {len(cohort)} cohort messages processed")
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--messages", type=int, default=2500)
    parser.add_argument("--filter-messages", type=int, default=200_000)
    args = parser.parse_args()
    fast, full = filter_speed(args.filter_messages)
    print(f"tokenizer + cohort filter: {fast:,.0f} msg/s/core; hl7apy parse (baseline) {full:,.0f} msg/s")
    print(f"  {fast / full:,.0f}x the baseline; target >= 20,000 msg/s/core")
    name = f"kwg_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(args.postgres, f'CREATE DATABASE "{name}"'))
    try:
        with tempfile.TemporaryDirectory(prefix="kwg-bench-hl7-") as home:
            done, rate = mixed_feed(args, args.postgres.rsplit("/", 1)[0] + f"/{name}", Path(home))
    finally:
        asyncio.run(_admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(f"mixed feed: {args.messages:,} messages at {rate:,.0f} msg/s on one connection, 2% in the cohort")
    print(
        f"  cohort message commit -> in the store: p50 {percentile(done, 50):.2f} s, p99 {percentile(done, 99):.2f} s"
        " (target p99 <= 2 s)"
    )


if __name__ == "__main__":
    main()
