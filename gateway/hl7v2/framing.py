"""MLLP framing without I/O: bytes in (in whatever chunks TCP delivers them), whole frames out.

A frame is ``SB <message> EB CR``. The decoder is a pure state machine so that it can be tested with arbitrary
chunk boundaries (hypothesis) and reused by the listener, the benchmark's sender and tests. A frame larger than
the limit is not buffered: its bytes are dropped until its end, and an :class:`Oversize` event tells the caller
to answer AR and carry on with the next frame on the same connection.
"""

from __future__ import annotations

from dataclasses import dataclass

START_BLOCK = b"\x0b"  # SB, vertical tab
END_BLOCK = b"\x1c"  # EB, file separator
CARRIAGE_RETURN = b"\x0d"  # CR, ends the frame after EB
FRAME_END = END_BLOCK + CARRIAGE_RETURN


def frame(message: bytes) -> bytes:
    """Wrap one message in MLLP framing."""
    return START_BLOCK + message + FRAME_END


@dataclass(frozen=True, slots=True)
class Oversize:
    """A frame exceeded the size limit; ``size`` is how many bytes were seen before the decoder gave up on it."""

    size: int


@dataclass(frozen=True, slots=True)
class Frame:
    payload: bytes


class FrameDecoder:
    """Incremental MLLP decoder. Bytes outside a frame (line noise, stray CR/LF between frames) are ignored.

    An EB that is not followed by CR is kept as payload (lenient reading); an EB that ends a chunk waits for the
    next chunk to decide.
    """

    __slots__ = ("_buffer", "_discarding", "_eb_pending", "_in_frame", "_seen", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._in_frame = False
        self._discarding = False  # inside an over-size frame: drop bytes until its end
        self._eb_pending = False
        self._seen = 0

    @property
    def mid_frame(self) -> bool:
        """True when a frame has started but not ended (the peer stopped half-way)."""
        return self._in_frame

    def feed(self, data: bytes) -> list[Frame | Oversize]:
        events: list[Frame | Oversize] = []
        pos = 0
        n = len(data)
        if self._eb_pending and n:
            self._eb_pending = False
            if data[0:1] == CARRIAGE_RETURN:
                self._finish(events)
                pos = 1
            else:
                self._append(END_BLOCK)
        while pos < n:
            if not self._in_frame:
                start = data.find(START_BLOCK, pos)
                if start == -1:
                    break
                self._in_frame = True
                pos = start + 1
                continue
            end = data.find(END_BLOCK, pos)
            if end == -1:
                self._append(data[pos:])
                break
            self._append(data[pos:end])
            if end + 1 == n:
                self._eb_pending = True
                break
            if data[end + 1] == CARRIAGE_RETURN[0]:
                self._finish(events)
                pos = end + 2
            else:
                self._append(END_BLOCK)
                pos = end + 1
        return events

    def _append(self, chunk: bytes) -> None:
        self._seen += len(chunk)
        if self._discarding:
            return
        if len(self._buffer) + len(chunk) > self.max_bytes:
            self._discarding = True
            self._buffer.clear()
        else:
            self._buffer += chunk

    def _finish(self, events: list[Frame | Oversize]) -> None:
        events.append(Oversize(self._seen) if self._discarding else Frame(bytes(self._buffer)))
        self._buffer.clear()
        self._in_frame = False
        self._discarding = False
        self._seen = 0
