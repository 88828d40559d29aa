"""The HL7 v2 tokenizer: samples, escapes, repetitions, empty fields, round trips (hypothesis)."""

from __future__ import annotations

from pathlib import Path

import hl7  # python-hl7, the reference parser for differential checks
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mappings.hl7v2.tokenizer import (
    DEFAULT_DELIMITERS,
    Delimiters,
    HL7ParseError,
    escape,
    normalise,
    parse,
    peek,
    unescape,
)

SAMPLES = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "hl7v2").glob("*.hl7"))
UK = Path(__file__).resolve().parents[1] / "fixtures" / "hl7v2" / "uk-synthetic-adt-a01.hl7"


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def test_samples_are_present() -> None:
    assert len(SAMPLES) >= 30


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_parses_and_agrees_with_python_hl7(path: Path) -> None:
    text = read(path)
    message = parse(text)
    reference = hl7.parse(normalise(text))
    assert [s.name for s in message.segments] == [str(s[0]) for s in reference]
    env = peek(text)
    assert env.control_id == str(reference.segment("MSH")[10])
    assert env.message_type == str(reference.segment("MSH")[9][0][0])
    assert env.trigger_event == str(reference.segment("MSH")[9][0][1])
    # every field of PID agrees with python-hl7, raw
    pid = message.segment("PID")
    ref_pid = reference.segment("PID")
    assert pid is not None
    for n in range(1, len(ref_pid)):
        assert pid.raw(n) == str(ref_pid[n]), f"PID-{n}"


def test_uk_message_envelope() -> None:
    env = peek(read(UK))
    assert env.sending_facility == "RX1"
    assert (env.message_type, env.trigger_event) == ("ADT", "A01")
    assert env.control_id == "RX1-000012345"
    assert env.version == "2.4"
    assert env.charset == "UNICODE UTF-8"
    assert env.nhs_number == "9449306753"
    assert [i.assigning_authority for i in env.identifiers] == ["NHS", "RX1"]


def test_uk_message_fields() -> None:
    msg = parse(read(UK))
    pid = msg.segment("PID")
    pd1 = msg.segment("PD1")
    pv1 = msg.segment("PV1")
    assert pid is not None and pd1 is not None and pv1 is not None
    assert pid.component(3, 1, 2) == "RX1123456"
    assert pid.component(5, 1) == "TEST" and pid.component(5, 2) == "ALEX"
    assert pid.value(32) == "NSTS01"
    assert pd1.component(3, 3) == "B86001"
    assert pv1.value(2) == "I"
    assert pv1.component(3, 9) == "WARD 7 CAMHS TIER 4"
    assert pv1.component(19, 1) == "RX1V000123"
    assert pv1.value(44) == "20240315142000"


def test_nhs_number_with_hn_type_is_recognised() -> None:
    text = "MSH|^~\\&|EPIC|UCLH|||20240101||ADT^A01|1|P|2.4\rPID|1||1234567890^^^NHS^HN||X^Y"
    assert peek(text).nhs_number == "1234567890"


def test_bom_and_line_feeds_are_normalised() -> None:
    text = "\ufeffMSH|^~\\&|A|B|C|D|20240101||ADT^A08|42|P|2.4\r\nPID|1||123^^^NHS^NH\n"
    env = peek(text)
    assert env.control_id == "42" and env.nhs_number == "123"
    assert [s.name for s in parse(text).segments] == ["MSH", "PID"]


@pytest.mark.parametrize(
    "text",
    ["", "PID|1||123", "MSH", "MSH|^~|A", "MSH|^^\\&|A|B", "MSH|^~\\&|A\rp1|x"],
)
def test_unreadable_messages_raise_a_located_error(text: str) -> None:
    with pytest.raises(HL7ParseError):
        parse(text)


def test_escape_sequences_decode() -> None:
    d = DEFAULT_DELIMITERS
    assert unescape(r"A\F\B\S\C\T\D\R\E\E\F", d) == "A|B^C&D~E\\F"
    assert unescape(r"Si\XC3A2\n", d) == "Siân"
    assert unescape(r"\H\bold\N\ stays", d) == r"\H\bold\N\ stays"
    assert unescape("unterminated \\F", d) == "unterminated \\F"


def test_empty_fields_and_repetitions() -> None:
    msg = parse("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.4\rPID|||a~~c||")
    pid = msg.segment("PID")
    assert pid is not None
    assert pid.repetitions(3) == ["a", "", "c"]
    assert pid.component(3, 1, 3) == "c"
    assert pid.value(1) == "" and pid.value(99) == ""


_delims = st.sampled_from([DEFAULT_DELIMITERS, Delimiters("#", "$", "*", "!", "%")])


@given(st.text(), _delims)
def test_escape_then_unescape_is_identity(value: str, d: Delimiters) -> None:
    assert unescape(escape(value, d), d) == value


@given(st.text(), _delims)
def test_escaped_text_has_no_bare_delimiters(value: str, d: Delimiters) -> None:
    encoded = escape(value, d).replace(f"{d.escape}", "")
    for ch in (d.field, d.component, d.repetition, d.subcomponent, "\r", "\n"):
        if ch not in "EFSTRX0123456789ABCDEF":
            assert ch not in encoded


_value = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@given(st.lists(st.lists(st.lists(_value, min_size=1, max_size=3), min_size=1, max_size=3), min_size=1, max_size=4))
def test_built_segment_reads_back(fields: list[list[list[str]]]) -> None:
    d = DEFAULT_DELIMITERS
    raw_fields = [d.repetition.join(d.component.join(escape(c, d) for c in rep) for rep in f) for f in fields]
    text = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.4\rZKW|" + d.field.join(raw_fields)
    seg = parse(text).segment("ZKW")
    assert seg is not None
    for n, field in enumerate(fields, start=1):
        for r, rep in enumerate(field, start=1):
            for c, comp in enumerate(rep, start=1):
                assert seg.component(n, c, r) == comp
