"""The asyncio MLLP listener: frames in, a durable append to the inbox, an original-mode ACK out.

Each connection is served by one task that handles its frames strictly in order (a PAS waits for each ACK, and
a sender that pipelines still gets its messages stored and ACKed in the order sent). Every frame gets an answer:

- AA after the message is committed to the inbox (or recognised as a duplicate, or counted and dropped because
  it is not about the cohort);
- AR with an ERR segment for what can never be accepted as sent (unreadable MSH, missing MSH-10, unsupported
  version or character set, a frame over the size limit);
- AE with an ERR segment when the gateway itself failed (the database is down): the sender should resend.

The connection is closed only when the peer closes it, when it stays silent longer than the idle timeout, or at
shutdown; never instead of an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from gateway.hl7v2.ack import AckCode, AckError, AckIdentity, ErrorCode, build_ack
from gateway.hl7v2.cohort import CohortLookup
from gateway.hl7v2.decoding import UnsupportedCharset, decode_message
from gateway.hl7v2.framing import Frame, FrameDecoder, frame
from gateway.hl7v2.inbox import HL7Inbox, InboxItem
from mappings.hl7v2.tokenizer import DEFAULT_DELIMITERS, Delimiters, Envelope, HL7ParseError, delimiters_of, peek

log = logging.getLogger("gateway.hl7v2.listener")

READ_CHUNK = 64 * 1024
SUPPORTED_VERSION_PREFIX = "2."


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    max_message_bytes: int = 1024 * 1024
    idle_timeout: float = 600.0  # seconds; 0 means never
    identity: AckIdentity = field(default_factory=AckIdentity)


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """Server-side TLS for MLLP (TLS 1.2 or later)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def summarise(envelope: Envelope) -> str:
    """The parsed summary kept in the message log next to the raw message."""
    return orjson.dumps(
        {
            "type": envelope.message_type,
            "event": envelope.trigger_event,
            "version": envelope.version,
            "processing_id": envelope.processing_id,
            "charset": envelope.charset,
            "identifiers": [
                {"value": i.value, "authority": i.assigning_authority, "type": i.type_code}
                for i in envelope.identifiers
            ],
        }
    ).decode()


def check_envelope(envelope: Envelope) -> AckError | None:
    """What makes a readable MSH unacceptable."""
    if not envelope.control_id:
        return AckError(ErrorCode.REQUIRED_FIELD_MISSING, "MSH-10 message control id is missing", "MSH", 10)
    if not envelope.sending_facility and not envelope.sending_application:
        return AckError(ErrorCode.REQUIRED_FIELD_MISSING, "MSH-3/MSH-4 sender is missing", "MSH", 4)
    if not envelope.message_type:
        return AckError(ErrorCode.REQUIRED_FIELD_MISSING, "MSH-9 message type is missing", "MSH", 9)
    if not envelope.version.startswith(SUPPORTED_VERSION_PREFIX):
        return AckError(ErrorCode.UNSUPPORTED_VERSION, f"HL7 version {envelope.version!r} is not supported", "MSH", 12)
    return None


def _location(exc: HL7ParseError) -> tuple[str, int]:
    segment, _, number = exc.location.partition("-")
    return (segment or "MSH"), (int(number) if number.isdigit() else 0)


class MllpListener:
    """Serves MLLP connections; one instance per process, shared by all connections."""

    def __init__(
        self,
        inbox: HL7Inbox,
        cohort: CohortLookup,
        config: ListenerConfig = ListenerConfig(),
        *,
        on_connection: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.inbox = inbox
        self.cohort = cohort
        self.config = config
        self._on_connection = on_connection
        self._connections: set[asyncio.Task[None]] = set()

    async def accept(self, payload: bytes, peer: str | None) -> bytes:
        """Decide about one message and return its ACK (unframed). Stores it durably first when it is kept."""
        try:
            text = decode_message(payload)
            envelope = peek(text)
        except UnsupportedCharset as exc:
            segment, number = _location(exc)
            error = AckError(ErrorCode.DATA_TYPE, str(exc), segment, number)
            return self._answer(_envelope_or_none(payload), AckCode.REJECT, error, "rejected")
        except HL7ParseError as exc:
            segment, number = _location(exc)
            error = AckError(ErrorCode.SEGMENT_SEQUENCE, f"MSH unreadable: {exc}", segment, number)
            return self._answer(None, AckCode.REJECT, error, "rejected")
        delimiters = delimiters_of(text)
        problem = check_envelope(envelope)
        if problem is not None:
            return self._answer(envelope, AckCode.REJECT, problem, "rejected", delimiters)
        try:
            if not await self.cohort.contains(envelope):
                self.inbox.count(envelope.sending_facility, _type(envelope), "not_in_cohort")
                return self._answer(envelope, AckCode.ACCEPT, None, None, delimiters)
            item = InboxItem(
                sending_application=envelope.sending_application[:64],
                sending_facility=envelope.sending_facility[:64],
                control_id=envelope.control_id[:64],
                message_type=_type(envelope),
                patient_key=(envelope.nhs_number or _first_local(envelope)),
                peer=peer,
                raw=payload,
                summary=summarise(envelope),
            )
            await self.inbox.append(item)
        except Exception as exc:  # the gateway failed, not the message: AE so that the sender resends
            log.exception("could not store HL7 message %s from %s", envelope.control_id, envelope.sending_facility)
            error = AckError(ErrorCode.APPLICATION_INTERNAL_ERROR, f"message not stored: {type(exc).__name__}")
            return self._answer(envelope, AckCode.ERROR, error, None, delimiters)
        return self._answer(envelope, AckCode.ACCEPT, None, None, delimiters)

    def reject_oversize(self, size: int) -> bytes:
        error = AckError(
            ErrorCode.APPLICATION_INTERNAL_ERROR,
            f"message of {size} bytes or more exceeds the limit of {self.config.max_message_bytes} bytes",
        )
        return self._answer(None, AckCode.REJECT, error, "rejected")

    def _answer(
        self,
        envelope: Envelope | None,
        code: AckCode,
        error: AckError | None,
        outcome: str | None,
        delimiters: Delimiters = DEFAULT_DELIMITERS,
    ) -> bytes:
        if outcome is not None:
            facility = envelope.sending_facility if envelope is not None else ""
            self.inbox.count(facility[:64], _type(envelope) if envelope is not None else "", outcome)
        text = build_ack(envelope, code, error=error, delimiters=delimiters, identity=self.config.identity)
        return text.encode("utf-8")

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection until the peer closes it, it goes idle, or the listener stops."""
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else None
        decoder = FrameDecoder(self.config.max_message_bytes)
        idle = self.config.idle_timeout or None
        try:
            while True:
                try:
                    async with asyncio.timeout(idle):
                        data = await reader.read(READ_CHUNK)
                except TimeoutError:
                    log.info("closing idle MLLP connection from %s", peer)
                    break
                if not data:
                    break
                for event in decoder.feed(data):
                    if isinstance(event, Frame):
                        ack = await self.accept(event.payload, peer)
                    else:
                        ack = self.reject_oversize(event.size)
                    writer.write(frame(ack))
                await writer.drain()
        except (ConnectionError, ssl.SSLError) as exc:
            log.info("MLLP connection from %s ended: %s", peer, exc)
        except asyncio.CancelledError:
            # Shutdown: this task is the connection's own top level, so it ends normally (asyncio's start_server
            # callback would otherwise log the cancellation as an error).
            pass
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
                await writer.wait_closed()

    async def serve(self, host: str, port: int, *, tls: ssl.SSLContext | None = None) -> asyncio.Server:
        """Start listening (the inbox must be started). Port 0 picks a free port; read it from the server."""
        return await asyncio.start_server(self.handle, host, port, ssl=tls, limit=READ_CHUNK, reuse_address=True)

    async def close_connections(self) -> None:
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _type(envelope: Envelope) -> str:
    return (f"{envelope.message_type}^{envelope.trigger_event}" if envelope.trigger_event else envelope.message_type)[
        :16
    ]


def _first_local(envelope: Envelope) -> str | None:
    for ident in envelope.identifiers:
        return f"{ident.assigning_authority}|{ident.value}"[:64]
    return None


def _envelope_or_none(payload: bytes) -> Envelope | None:
    """MSH read as Latin-1 so that a charset problem can still be answered with the sender's control id."""
    try:
        return peek(payload.decode("latin-1").split("\r", 1)[0].split("\n", 1)[0])
    except HL7ParseError:
        return None
