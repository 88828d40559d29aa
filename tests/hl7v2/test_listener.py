"""The MLLP listener over real sockets, with python-hl7's MLLP client as the sender, on both databases."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import hl7
import hl7.mllp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.hl7v2.cohort import CohortLookup, EveryoneInCohort
from gateway.hl7v2.framing import frame
from gateway.hl7v2.inbox import HL7Inbox
from gateway.hl7v2.listener import ListenerConfig, MllpListener, tls_context
from gateway.store.hl7_tables import hl7_message
from mappings.hl7v2.tokenizer import Envelope

FIXTURES = Path(__file__).parent.parent / "fixtures" / "hl7v2"
SAMPLES = sorted(FIXTURES.glob("*.hl7"))


def with_envelope(raw: bytes, facility: str, control_id: str) -> bytes:
    """The sample with MSH-4 and MSH-10 replaced (unique per test run), everything else byte for byte."""
    bom = b"\xef\xbb\xbf" if raw.startswith(b"\xef\xbb\xbf") else b""
    body = raw[len(bom) :]
    end = min(i for i in (body.find(b"\r"), body.find(b"\n"), len(body)) if i != -1)
    fields = body[:end].split(b"|")
    fields[3] = facility.encode()
    fields[9] = control_id.encode()
    return bom + b"|".join(fields) + body[end:]


@dataclass
class Running:
    host: str
    port: int
    engine: AsyncEngine
    facility: str

    async def connect(self) -> tuple[hl7.mllp.HL7StreamReader, hl7.mllp.HL7StreamWriter]:
        return await hl7.mllp.open_hl7_connection(self.host, self.port, encoding="utf-8")

    async def stored(self) -> list[tuple[str, bytes]]:
        async with self.engine.connect() as conn:
            stmt = (
                select(hl7_message.c.control_id, hl7_message.c.raw)
                .where(hl7_message.c.sending_facility == self.facility)
                .order_by(hl7_message.c.id)
            )
            return [(r[0], bytes(r[1])) for r in (await conn.execute(stmt)).all()]


async def _start(
    engine: AsyncEngine, cohort: CohortLookup | None = None, **config: float
) -> tuple[Running, MllpListener, HL7Inbox, asyncio.Server]:
    inbox = HL7Inbox(engine)
    await inbox.start()
    listener = MllpListener(
        inbox,
        cohort or EveryoneInCohort(),
        ListenerConfig(max_message_bytes=int(config.get("max_bytes", 64 * 1024)), idle_timeout=config.get("idle", 30)),
    )
    server = await listener.serve("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return Running("127.0.0.1", port, engine, f"T{uuid.uuid4().hex[:10]}"), listener, inbox, server


@pytest.fixture
async def running(engine: AsyncEngine) -> AsyncIterator[Running]:
    run, listener, inbox, server = await _start(engine)
    yield run
    server.close()
    await listener.close_connections()
    await server.wait_closed()
    await inbox.stop()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def _msa(ack: hl7.Message) -> tuple[str, str]:
    msa = ack.segment("MSA")
    return str(msa[1]), str(msa[2])


async def test_every_sample_is_acked_aa_and_stored_once_in_order(running: Running) -> None:
    reader, writer = await running.connect()
    sent = []
    for i, path in enumerate(SAMPLES):
        raw = with_envelope(path.read_bytes(), running.facility, f"M{i:03d}")
        writer.writeblock(raw)
        await writer.drain()
        ack = await reader.readmessage()
        assert _msa(ack) == ("AA", f"M{i:03d}"), path.name
        assert str(ack.segment("MSH")[5]) == "PAS" or str(ack.segment("MSH")[6]) == running.facility
        sent.append((f"M{i:03d}", raw))
    await _close(writer)
    assert await running.stored() == sent  # raw bytes as received, in the order sent
    assert len(sent) == len(SAMPLES) >= 30


async def test_garbage_frame_gets_ar_with_err_and_the_connection_goes_on(running: Running) -> None:
    reader, writer = await running.connect()
    writer.writeblock(b"this is not HL7")
    await writer.drain()
    ack = await reader.readmessage()
    assert _msa(ack)[0] == "AR"
    err = ack.segment("ERR")
    assert str(err[3]).startswith("100")  # table 0357: segment sequence error (no MSH)
    writer.writeblock(with_envelope(SAMPLES[0].read_bytes(), running.facility, "after-garbage"))
    await writer.drain()
    assert _msa(await reader.readmessage()) == ("AA", "after-garbage")
    await _close(writer)


async def test_missing_control_id_and_unsupported_version_are_rejected(running: Running) -> None:
    reader, writer = await running.connect()
    writer.writeblock(b"MSH|^~\\&|PAS|" + running.facility.encode() + b"|KWG|KWG|20250101||ADT^A01||P|2.4\rPID|||1")
    await writer.drain()
    ack = await reader.readmessage()
    assert _msa(ack)[0] == "AR"
    assert str(ack.segment("ERR")[2]) == "MSH^1^10"
    assert str(ack.segment("ERR")[3]).startswith("101")
    writer.writeblock(b"MSH|^~\\&|PAS|F|KWG|KWG|20250101||ADT^A01|X1|P|3.0\rPID|||1")
    await writer.drain()
    ack = await reader.readmessage()
    assert _msa(ack) == ("AR", "X1")
    assert str(ack.segment("ERR")[3]).startswith("203")
    await _close(writer)
    assert await running.stored() == []


async def test_duplicate_is_acked_aa_and_stored_once(running: Running) -> None:
    raw = with_envelope(SAMPLES[0].read_bytes(), running.facility, "dup-1")
    reader, writer = await running.connect()
    for _ in range(3):
        writer.writeblock(raw)
        await writer.drain()
        assert _msa(await reader.readmessage()) == ("AA", "dup-1")
    await _close(writer)
    # a resend on a new connection (as after a timeout) is a duplicate too
    reader, writer = await running.connect()
    writer.writeblock(raw)
    await writer.drain()
    assert _msa(await reader.readmessage()) == ("AA", "dup-1")
    await _close(writer)
    assert [c for c, _ in await running.stored()] == ["dup-1"]


async def test_latin1_by_msh18_and_utf8_without_it(running: Running) -> None:
    msh = f"MSH|^~\\&|PAS|{running.facility}|KWG|KWG|20250101||ADT^A01"
    latin = f"{msh}|L1|P|2.4||||||8859/1\rPID|||1||Siân^Wyn".encode("latin-1")
    bad = f"{msh}|L2|P|2.4\rPID|||1||Siân^Wyn".encode("latin-1")  # Latin-1 bytes, no MSH-18: not valid UTF-8
    reader, writer = await running.connect()
    writer.writeblock(latin)
    await writer.drain()
    assert _msa(await reader.readmessage()) == ("AA", "L1")
    writer.writeblock(bad)
    await writer.drain()
    ack = await reader.readmessage()
    assert _msa(ack) == ("AR", "L2")
    assert str(ack.segment("ERR")[2]) == "MSH^1^18"
    await _close(writer)
    assert [c for c, _ in await running.stored()] == ["L1"]


async def test_oversize_frame_gets_ar_and_the_next_frame_is_accepted(engine: AsyncEngine) -> None:
    run, listener, inbox, server = await _start(engine, max_bytes=2048)
    try:
        reader, writer = await asyncio.open_connection(run.host, run.port)
        big = with_envelope(SAMPLES[0].read_bytes(), run.facility, "big") + b"\rZZZ|" + b"x" * 5000
        small = with_envelope(SAMPLES[0].read_bytes()[:1500], run.facility, "small")
        writer.write(frame(big) + frame(small))
        await writer.drain()
        first = await reader.readuntil(b"\x1c\r")
        second = await reader.readuntil(b"\x1c\r")
        assert b"MSA|AR" in first and b"ERR|" in first and b"exceeds the limit" in first
        assert b"MSA|AA|small" in second
        await _close(writer)
        assert [c for c, _ in await run.stored()] == ["small"]
    finally:
        server.close()
        await listener.close_connections()
        await inbox.stop()


async def test_idle_connection_is_closed(engine: AsyncEngine) -> None:
    run, listener, inbox, server = await _start(engine, idle=0.2)
    try:
        reader, writer = await asyncio.open_connection(run.host, run.port)
        started = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""  # EOF from the listener
        assert asyncio.get_running_loop().time() - started >= 0.19
        await _close(writer)
    finally:
        server.close()
        await listener.close_connections()
        await inbox.stop()


class OnlyNhsNumber:
    def __init__(self, nhs: str) -> None:
        self.nhs = nhs

    async def contains(self, envelope: Envelope) -> bool:
        return envelope.nhs_number == self.nhs


async def test_people_outside_the_cohort_are_acked_but_not_kept(engine: AsyncEngine) -> None:
    run, listener, inbox, server = await _start(engine, cohort=OnlyNhsNumber("9449305552"))
    try:
        reader, writer = await run.connect()
        for control, nhs in (("in", "9449305552"), ("out", "9000000009")):
            msg = f"MSH|^~\\&|PAS|{run.facility}|KWG|KWG|20250101||ADT^A01|{control}|P|2.4\rPID|||{nhs}^^^NHS^NH"
            writer.writeblock(msg.encode())
            await writer.drain()
            assert _msa(await reader.readmessage()) == ("AA", control)
        await _close(writer)
        assert [c for c, _ in await run.stored()] == ["in"]
    finally:
        server.close()
        await listener.close_connections()
        await inbox.stop()


async def test_many_senders_at_once_keep_their_order(running: Running) -> None:
    async def sender(n: int) -> list[str]:
        reader, writer = await running.connect()
        acked = []
        for i in range(15):
            cid = f"S{n:02d}-{i:03d}"
            writer.writeblock(with_envelope(SAMPLES[i % len(SAMPLES)].read_bytes(), running.facility, cid))
            await writer.drain()
            code, echoed = _msa(await reader.readmessage())
            assert code == "AA"
            acked.append(echoed)
        await _close(writer)
        return acked

    results = await asyncio.gather(*(sender(n) for n in range(8)))
    stored = [c for c, _ in await running.stored()]
    assert sorted(stored) == sorted(c for r in results for c in r)
    for n in range(8):  # per connection, stored in the order sent
        mine = [c for c in stored if c.startswith(f"S{n:02d}-")]
        assert mine == sorted(mine)


async def test_mllp_over_tls(engine: AsyncEngine, tmp_path: Path) -> None:
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    inbox = HL7Inbox(engine)
    await inbox.start()
    listener = MllpListener(inbox, EveryoneInCohort())
    server = await listener.serve("127.0.0.1", 0, tls=tls_context(cert, key))
    port = server.sockets[0].getsockname()[1]
    facility = f"T{uuid.uuid4().hex[:10]}"
    try:
        client = ssl.create_default_context(cafile=str(cert))
        client.check_hostname = False
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        writer.write(frame(with_envelope(SAMPLES[0].read_bytes(), facility, "tls-1")))
        await writer.drain()
        assert b"MSA|AA|tls-1" in await reader.readuntil(b"\x1c\r")
        await _close(writer)
        # a plain-text sender on the TLS port gets no HL7 answer and does not disturb the listener
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame(b"MSH|^~\\&|x"))
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""
        await _close(writer)
    finally:
        server.close()
        await listener.close_connections()
        await inbox.stop()
