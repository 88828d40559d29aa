"""MLLP framing: frames split across arbitrary TCP chunk boundaries come out exactly as sent."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.hl7v2.framing import (
    CARRIAGE_RETURN,
    END_BLOCK,
    START_BLOCK,
    Frame,
    FrameDecoder,
    Oversize,
    frame,
)

# Payloads: any bytes except SB and EB (which HL7 text never contains), including CR, LF and high bytes.
payloads = st.binary(max_size=300).map(lambda b: b.replace(START_BLOCK, b"").replace(END_BLOCK, b""))


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


def test_framing_constants_are_the_mllp_bytes() -> None:
    assert (START_BLOCK, END_BLOCK, CARRIAGE_RETURN) == (b"\x0b", b"\x1c", b"\r")
    assert frame(b"MSH|x") == b"\x0bMSH|x\x1c\r"


@settings(max_examples=300)
@given(messages=st.lists(payloads, min_size=1, max_size=8), cuts=st.lists(st.integers(0, 10_000), max_size=40))
def test_frames_reassemble_across_any_chunking(messages: list[bytes], cuts: list[int]) -> None:
    stream = b"\r\n".join(frame(m) for m in messages)  # stray CR/LF between frames is ignored
    decoder = FrameDecoder(max_bytes=1000)
    events = [e for chunk in _chunks(stream, cuts) for e in decoder.feed(chunk)]
    assert events == [Frame(m) for m in messages]
    assert not decoder.mid_frame


@given(cuts=st.lists(st.integers(0, 10_000), max_size=20), size=st.integers(11, 200))
def test_oversize_frame_is_reported_and_the_next_frame_still_decodes(cuts: list[int], size: int) -> None:
    stream = frame(b"A" * size) + frame(b"MSH|ok")
    decoder = FrameDecoder(max_bytes=10)
    events = [e for chunk in _chunks(stream, cuts) for e in decoder.feed(chunk)]
    assert events == [Oversize(size), Frame(b"MSH|ok")]


def test_eb_without_cr_is_payload_even_at_a_chunk_end() -> None:
    decoder = FrameDecoder(max_bytes=100)
    assert decoder.feed(b"\x0bab\x1c") == []
    assert decoder.feed(b"cd\x1c") == []
    assert decoder.feed(b"\r") == [Frame(b"ab\x1ccd")]


def test_a_frame_cut_off_is_not_delivered() -> None:
    decoder = FrameDecoder(max_bytes=100)
    assert decoder.feed(b"noise\x0bMSH|half") == []
    assert decoder.mid_frame
