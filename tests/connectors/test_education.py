"""The education connectors: safe CTF import and its FHIR mapping, and the minimised push to a school (MockTransport
and once against a real HTTP process), with a property test that nothing clinical can reach a school."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from connectors.base import Change, ConfigurationError, PermanentError, TransientError
from connectors.education.config import EducationConfig
from connectors.education.connector import WITHHELD, EducationConnector, change_document
from connectors.education.ctf import CtfError, parse_ctf
from connectors.education.ctf_fhir import SCHOOL_URN, education_context, patient_identifiers
from connectors.education.registry_entry import ENTRIES, build
from connectors.education.safe_xml import BadXml, UnsafeXml
from connectors.education.school_view import school_document
from mappings.fhir import validate_structure
from mappings.keyworking import urls
from tests.servers import _free_port, _wait_port

CTF = Path(__file__).parent.parent / "fixtures" / "education" / "ctf-synthetic.xml"
ENDPOINT = "https://school.test/api/keyworking"
URN = "100001"
SECRET = "SECRET-"


def _role(code: str) -> dict[str, Any]:
    return {"coding": [{"system": urls.CS_CARE_TEAM_ROLE, "code": code}]}


def _owner(system: str, value: str) -> dict[str, Any]:
    ref = {"type": "Organization", "identifier": {"system": system, "value": value}}
    return {"url": urls.EXT_OWNER_AGENCY, "valueReference": ref}


CARE_TEAM: dict[str, Any] = {
    "resourceType": "CareTeam",
    "id": "ct1",
    "status": "active",
    "subject": {"reference": "Patient/p1"},
    "telecom": [
        {"system": "phone", "value": "01632 960001", "use": "work"},
        {"system": "phone", "value": "07700 900123", "use": "home"},
    ],
    "participant": [
        {"role": [_role("keyworker")], "member": {"display": "Sam Keyworker"}, "onBehalfOf": {"display": "KW Service"}},
        {"role": [_role("keyworker")], "member": {"display": "Old Keyworker"}, "period": {"end": "2025-01-01"}},
        {"role": [_role("camhs-clinician")], "member": {"display": "Dr Clinician"}},
    ],
    "note": [{"text": "SECRET-note on the team"}],
}
PLANNED_REVIEW: dict[str, Any] = {
    "resourceType": "Encounter",
    "id": "e1",
    "status": "planned",
    "class": {"system": urls.V3_ACT_CODE, "code": "VR"},
    "type": [{"coding": [{"system": urls.CS_REVIEW_TYPE, "code": "community-cetr"}]}],
    "subject": {"reference": "Patient/p1"},
    "period": {"start": "2026-09-01T10:00:00Z"},
    "reasonCode": [{"text": "SECRET-reason for the review"}],
}
SCHOOL_RECOMMENDATION: dict[str, Any] = {
    "resourceType": "Task",
    "id": "t1",
    "meta": {"profile": [urls.CETR_RECOMMENDATION_TASK]},
    "extension": [_owner(SCHOOL_URN, URN)],
    "status": "requested",
    "intent": "plan",
    "description": "Agree a quiet space timetable",
    "owner": {"display": "SENCO Name"},
    "restriction": {"period": {"end": "2026-10-01"}},
    "note": [{"text": "SECRET-clinical note"}],
}
RULE_TASK: dict[str, Any] = {
    "resourceType": "Task",
    "id": "t2",
    "status": "requested",
    "intent": "order",
    "code": {"coding": [{"system": urls.CS_TASK_TYPE, "code": "keyworking-review"}]},
    "description": "SECRET-rule description",
    "restriction": {"period": {"end": "2026-08-01"}},
}
CONDITION: dict[str, Any] = {
    "resourceType": "Condition",
    "id": "c1",
    "code": {"text": "SECRET-diagnosis"},
    "subject": {"reference": "Patient/p1"},
}


# --- CTF ------------------------------------------------------------------------------------------------------------


def test_ctf_pupils_school_and_sen_are_read() -> None:
    result = parse_ctf(CTF.read_bytes())
    assert result.version == "24.0"
    assert result.school is not None and (result.school.urn, result.school.dfe_number) == (URN, "8202001")
    assert [p.upn for p in result.pupils] == ["A82020011234X", "B820200156781"]
    alex, jo = result.pupils
    assert (alex.surname, alex.forename, alex.birth_date, alex.sex) == ("Testperson", "Alex", date(2014, 3, 9), "male")
    assert alex.current_sen is not None and alex.current_sen.provision == "E"
    assert jo.sex == "female" and jo.current_sen is None  # <Sex> (newer files) as well as <Gender>


def test_ctf_problems_name_the_pupil_and_element() -> None:
    errors = parse_ctf(CTF.read_bytes()).errors
    assert {(e.pupil, e.element) for e in errors} == {(3, "UPN"), (3, "DOB"), (3, "Gender")}
    assert str(CtfError(3, "UPN", "bad")) == "Pupil 3, UPN: bad"


def test_ctf_header_problems_are_reported() -> None:
    xml = b"<CTfile><Header><SourceSchool><LEA>82</LEA><Estab>2001</Estab></SourceSchool></Header></CTfile>"
    result = parse_ctf(xml)
    assert result.school is None and [(e.pupil, e.element) for e in result.errors] == [(0, "SourceSchool/LEA")]
    assert parse_ctf(b"<Other/>").errors[0].message == "the root element is not CTfile"


@pytest.mark.parametrize(
    "attack",
    [
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><CTfile>&b;</CTfile>',
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><CTfile>&x;</CTfile>',
        b'<!DOCTYPE CTfile SYSTEM "http://evil.test/ctf.dtd"><CTfile/>',
    ],
)
def test_ctf_with_a_doctype_or_entities_is_refused(attack: bytes) -> None:
    with pytest.raises(UnsafeXml):
        parse_ctf(attack)


@pytest.mark.parametrize("encoding", ["bogus", "base64", "rot13", "utf-32", "utf-7", "idna", "unicode_escape"])
def test_a_ctf_declaring_an_encoding_a_ctf_is_never_in_is_bad_xml(encoding: str) -> None:
    """Found by tests/fuzz/test_ctf_fuzz.py: expat handed these to Python's codecs, which raised LookupError,
    ValueError or UnicodeError (a crash of the import) or, for unicode_escape, read other bytes than were sent."""
    with pytest.raises(BadXml, match="encoding|decoded"):
        parse_ctf(f'<?xml version="1.0" encoding="{encoding}"?><CTfile/>'.encode())


@pytest.mark.parametrize("encoding", ["UTF-8", "ISO-8859-1", "windows-1252", "US-ASCII"])
def test_a_ctf_in_the_encodings_ctfs_are_written_in_is_read(encoding: str) -> None:
    assert parse_ctf(f'<?xml version="1.0" encoding="{encoding}"?><CTfile/>'.encode()).errors[0].pupil == 0


def test_a_repeated_upn_is_an_error_on_the_later_pupil() -> None:
    pupil = "<Pupil><UPN>A82020011234X</UPN><Surname>S</Surname><Forename>F</Forename><DOB>2014-01-01</DOB>"
    pupil += "<Gender>F</Gender></Pupil>"
    header = "<Header><SourceSchool><LEA>820</LEA><Estab>2001</Estab></SourceSchool></Header>"
    result = parse_ctf(f"<CTfile>{header}<CTFpupilData>{pupil}{pupil}</CTFpupilData></CTfile>".encode())
    assert len(result.pupils) == 1 and [(e.pupil, e.element) for e in result.errors] == [(2, "UPN")]


def test_malformed_ctf_says_where() -> None:
    with pytest.raises(BadXml, match="line 1"):
        parse_ctf(b"<CTfile><Header></CTfile>")


def test_ctf_maps_to_a_upn_identifier_and_a_valid_education_context() -> None:
    result = parse_ctf(CTF.read_bytes())
    alex = result.pupils[0]
    assert patient_identifiers(alex) == [{"system": urls.UPN, "value": "A82020011234X"}]
    observation = education_context(alex, result.school, patient_id="p1", as_of=date(2026, 7, 18))
    assert validate_structure(observation) == []
    parts = {c["code"]["coding"][0]["code"]: c for c in observation["component"]}
    assert parts["school"]["valueCodeableConcept"]["coding"][0] == {
        "system": SCHOOL_URN,
        "code": URN,
        "display": "Riverside Test Primary",
    }
    assert parts["sen-provision"]["valueCodeableConcept"]["coding"][0]["code"] == "E"
    assert parts["sen-provision-start"]["valueDateTime"] == "2024-01-15"


# --- the school view -----------------------------------------------------------------------------------------------


def test_the_school_view_holds_keyworkers_reviews_actions_and_school_recommendations() -> None:
    others = _owner(urls.ODS_ORGANISATION, "LA820")
    la_recommendation = {**SCHOOL_RECOMMENDATION, "id": "t9", "extension": [others]}
    view = school_document(
        [CARE_TEAM, PLANNED_REVIEW, SCHOOL_RECOMMENDATION, la_recommendation, RULE_TASK, CONDITION],
        school_codes=[URN],
        patient_id="p1",
    )
    assert view == {
        "patient_id": "p1",
        "keyworkers": [
            {"name": "Sam Keyworker", "agency": "KW Service", "contact": [{"system": "phone", "value": "01632 960001"}]}
        ],
        "reviews": [{"type": "Community C(E)TR", "date": "2026-09-01T10:00:00Z"}],
        "actions": [{"type": "12-week keyworking review", "due": "2026-08-01", "status": "requested"}],
        "recommendations": [
            {
                "action": "Agree a quiet space timetable",
                "status": "requested",
                "owner": "SENCO Name",
                "due": "2026-10-01",
            }
        ],
    }
    assert SECRET not in json.dumps(view)


_TEXT = st.text(alphabet="abcdefghij ", max_size=8).map(lambda t: SECRET + t)
_JSON = st.recursive(
    _TEXT | st.integers() | st.booleans(),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["text", "code", "display", "value", "reference"]), children, max_size=3)
    ),
    max_leaves=10,
)
_ELEMENTS = ["note", "reasonCode", "code", "valueString", "text", "diagnosis", "extension", "component", "outcome"]


@st.composite
def _resource(draw: st.DrawFn) -> dict[str, Any]:
    """Any resource: clinical types with secret content everywhere, and school types with secrets in extra places."""
    base = draw(st.sampled_from([CONDITION, CARE_TEAM, PLANNED_REVIEW, SCHOOL_RECOMMENDATION, RULE_TASK]))
    kind = draw(st.sampled_from(["Condition", "Observation", "AllergyIntolerance", base["resourceType"]]))
    resource = {**base, "resourceType": kind}
    for name in draw(st.lists(st.sampled_from(_ELEMENTS), max_size=4)):
        resource[name] = draw(_JSON)
    if kind not in ("CareTeam", "Encounter", "Task"):
        resource["description"] = draw(_TEXT)
    return resource


@given(st.lists(_resource(), max_size=6))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_nothing_clinical_can_reach_a_school(resources: list[dict[str, Any]]) -> None:
    view = school_document(resources, school_codes=[URN], patient_id="p1")
    assert SECRET not in json.dumps(view)
    for resource in resources:
        document = change_document(Change(1, resource["resourceType"], "x", 1, resource, "p1"), [URN])
        if resource["resourceType"] not in ("CareTeam", "Encounter", "Task"):
            assert document is None
        assert SECRET not in json.dumps(document)


# --- the connector -------------------------------------------------------------------------------------------------


def _connector(handler: Any) -> EducationConnector:
    config = EducationConfig.model_validate({"endpoint": ENDPOINT, "school_urn": URN, "bearer_token": "tok"})
    return EducationConnector(config, transport=httpx.MockTransport(handler))


def test_the_config_needs_a_school_and_builds_through_the_registry_entry() -> None:
    with pytest.raises(ValidationError, match="URN or ODS"):
        EducationConfig.model_validate({"endpoint": ENDPOINT})
    with pytest.raises(ConfigurationError, match="education-json"):
        build({"endpoint": ENDPOINT, "school_urn": "12"}, None)
    assert set(ENTRIES) == {"education-json"}


async def test_clinical_changes_are_withheld_and_school_ones_posted() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    connector = _connector(handler)
    changes = [
        Change(1, "Condition", "c1", 1, CONDITION, "p1"),
        Change(2, "Task", "t1", 3, SCHOOL_RECOMMENDATION, "p1"),
        Change(3, "Encounter", "e1", 2, None, "p1"),
    ]
    report = await connector.push(changes)
    await connector.aclose()
    assert [(o.delivery_id, o.accepted, o.detail) for o in report.outcomes] == [
        (1, True, WITHHELD),
        (2, True, None),
        (3, True, None),
    ]
    assert len(seen) == 2 and seen[0].headers["Authorization"] == "Bearer tok"
    sent = json.loads(seen[0].content)
    assert (sent["resource_type"], sent["version_id"], sent["recommendations"][0]["due"]) == ("Task", 3, "2026-10-01")
    assert json.loads(seen[1].content)["deleted"] is True


@pytest.mark.parametrize(("status", "expected"), [(500, TransientError), (429, TransientError), (408, TransientError)])
async def test_5xx_429_and_408_retry(status: int, expected: type[Exception]) -> None:
    connector = _connector(lambda r: httpx.Response(status))
    with pytest.raises(expected):
        await connector.push([Change(1, "Task", "t1", 1, RULE_TASK, "p1")])
    await connector.aclose()


async def test_4xx_refuses_the_change() -> None:
    connector = _connector(lambda r: httpx.Response(403, text="not this pupil"))
    report = await connector.push([Change(1, "Task", "t1", 1, RULE_TASK, "p1")])
    await connector.aclose()
    assert report.refused[0].status == 403 and report.refused[0].detail == "not this pupil"
    error = PermanentError("x", status=403)
    assert error.status == 403


# --- the school API as a real process -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The fake LA server doubles as a school's API: it stores what arrives (the push is the same JSON shape)."""
    port = _free_port()
    log = tmp_path_factory.mktemp("school") / "fake-school.log"
    command = [sys.executable, "-m", "connectors.fake.local_authority_server", "--port", str(port)]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        if not _wait_port(port):
            raise RuntimeError(f"the fake school did not start: {log.read_text()}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_against_a_school_api_as_a_real_process(fake_school: str) -> None:
    async with httpx.AsyncClient(base_url=fake_school) as admin:
        await admin.post("/_reset")
        await admin.post("/_faults", json={"plan": ["429:1"]})
        connector = build({"endpoint": f"{fake_school}/la", "school_urn": URN}, None)
        await connector.check()
        changes = [
            Change(1, "CareTeam", "ct1", 1, CARE_TEAM, "p1"),
            Change(2, "Condition", "c1", 1, CONDITION, "p1"),
        ]
        with pytest.raises(TransientError) as caught:
            await connector.push(changes)
        assert caught.value.retry_after == 1.0
        report = await connector.push(changes)
        await connector.aclose()
        log = (await admin.get("/_log")).json()
    assert [o.accepted for o in report.outcomes] == [True, True]
    assert [d["resource_type"] for d in log["documents"]] == ["CareTeam"]
    assert log["documents"][0]["keyworkers"][0]["name"] == "Sam Keyworker"
    assert SECRET not in json.dumps(log)
