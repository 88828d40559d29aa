"""The message log over HTTP (``/admin/hl7``) on both databases: list, read with raw content, reprocess, counts."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.app import create_app
from gateway.hl7v2.inbox import HL7Inbox, InboxItem
from gateway.hl7v2.log import StoredMessage, process_pending
from gateway.settings import Settings

RAW = b"MSH|^~\\&|PAS|RX9|KWG|KWG|20261125103000||ADT^A01|C1|P|2.4\rPID|||9449305552^^^NHS^NH\r"


async def test_operators_see_and_reprocess_the_message_log(engine: AsyncEngine, settings: Settings) -> None:
    facility = uuid.uuid4().hex[:12]
    inbox = HL7Inbox(engine, count_interval=0)
    await inbox.start()
    try:
        for n in range(3):
            await inbox.append(
                InboxItem("PAS", facility, f"C{n}", "ADT^A01", "9449305552", "127.0.0.1:1", RAW, '{"event":"A01"}')
            )
    finally:
        await inbox.stop()

    async def handler(message: StoredMessage) -> None:
        if message.control_id == "C1" and message.sending_facility == facility:
            raise ValueError("PV1-3: unknown ward")

    while await process_pending(engine, handler):
        pass
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as client:
        listed = (await client.get("/admin/hl7/messages", params={"sending_facility": facility})).json()["items"]
        assert [(m["control_id"], m["status"]) for m in listed] == [
            ("C0", "processed"),
            ("C1", "failed"),
            ("C2", "processed"),
        ]
        failed = listed[1]
        assert failed["error"] == "ValueError: PV1-3: unknown ward" and failed["summary"] == {"event": "A01"}
        assert "raw" not in failed and failed["raw_kept"] is True
        one = (await client.get(f"/admin/hl7/messages/{failed['id']}")).json()
        assert one["raw"].startswith("MSH|^~\\&|PAS|RX9") and "\nPID|" in one["raw"]
        assert (await client.get("/admin/hl7/messages/987654321")).status_code == 404
        again = await client.post(f"/admin/hl7/messages/{failed['id']}/reprocess")
        assert again.status_code == 202 and again.json() == {"queued": 1}
        after = await client.get("/admin/hl7/messages", params={"sending_facility": facility, "status": "received"})
        assert [m["control_id"] for m in after.json()["items"]] == ["C1"]
        counts = (await client.get("/admin/hl7/counts")).json()["items"]
        assert {"sending_facility": facility, "outcome": "stored", "count": 3} in [
            {k: c[k] for k in ("sending_facility", "outcome", "count")} for c in counts
        ]
    await app.state.engine.dispose()
