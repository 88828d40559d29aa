"""``kwg serve`` with KWG_MLLP_ENABLED starts the MLLP listener beside the HTTP workers, and stops it on exit."""

from __future__ import annotations

import socket
from pathlib import Path

import hl7.mllp
import pytest

from tests.processes import running_gateway
from tests.servers import _free_port

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).parent.parent / "fixtures" / "hl7v2" / "ms__ADT-A01-01.hl7"


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


async def test_serve_runs_the_listener_when_enabled() -> None:
    import asyncio

    port = _free_port()
    with running_gateway(env={"KWG_MLLP_ENABLED": "true", "KWG_MLLP_PORT": str(port)}):
        for _ in range(100):
            if _port_open(port):
                break
            await asyncio.sleep(0.1)
        reader, writer = await hl7.mllp.open_hl7_connection("127.0.0.1", port, encoding="utf-8")
        try:
            writer.writeblock(SAMPLE.read_bytes())
            await writer.drain()
            ack = await asyncio.wait_for(reader.readmessage(), timeout=10)
        finally:
            writer.close()
            await writer.wait_closed()
        assert str(ack.segment("MSA")[1]) == "AA"
    for _ in range(50):  # the listener is a child of kwg serve and goes with it
        if not _port_open(port):
            break
        await asyncio.sleep(0.1)
    assert not _port_open(port)
