"""The pure parts of the access rules: which domain record fields come from which FHIR elements (so the sharing
profile decides them), who sees which AuditEvents, and how break-glass is flagged."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import BaseModel

from gateway.access.audit_events import may_see
from gateway.api.v1.minimise import FIELD_SOURCES, minimised, shown_fields
from gateway.audit.events import BREAK_GLASS, AuditEntry, audit_event
from gateway.auth import Caller
from gateway.sync.sharing import Recipient
from mappings.keyworking.mapping import to_fhir
from mappings.keyworking.records import (
    CareTeam,
    Contact,
    KeyworkingCase,
    Person,
    Record,
    RegisterEntry,
    ReviewMeeting,
)

RECORDS = Path(__file__).resolve().parents[1] / "mappings" / "records"
FIXTURES: dict[type[Record], str] = {
    Person: "person",
    RegisterEntry: "register-entry",
    KeyworkingCase: "keyworking-case",
    CareTeam: "care-team",
    Contact: "contact",
    ReviewMeeting: "review-meeting",
}
SCHOOL = Caller("school-mis", "190001", "DIRECT_CARE", organisation_type="school")
TRUST = Caller("trust-ehr", "RX4", "DIRECT_CARE", organisation_type="nhs-provider")


def fixture(kind: type[Record]) -> Record:
    return kind.model_validate(json.loads((RECORDS / f"{FIXTURES[kind]}.json").read_text()))


@pytest.mark.parametrize("kind", list(FIELD_SOURCES), ids=lambda k: k.__name__)
def test_every_field_of_every_record_kind_has_its_sources(kind: type[BaseModel]) -> None:
    assert set(FIELD_SOURCES[kind]) == set(kind.model_fields)


@pytest.mark.parametrize("kind", list(FIXTURES), ids=lambda k: k.__name__)
def test_each_source_is_an_element_the_mapping_writes(kind: type[Record]) -> None:
    record = fixture(kind)
    resources = to_fhir(record)
    dump = record.model_dump(mode="json", exclude_none=True)
    for name, sources in FIELD_SOURCES[kind].items():
        if dump.get(name) in (None, [], {}):
            continue
        for res_type, element in sources:
            assert any(r["resourceType"] == res_type and element in r for r in resources), (name, res_type, element)


@pytest.mark.parametrize("kind", list(FIXTURES), ids=lambda k: k.__name__)
def test_an_nhs_provider_sees_every_field(kind: type[Record]) -> None:
    record = fixture(kind)
    assert shown_fields(Recipient.NHS_PROVIDER, kind, to_fhir(record)) == frozenset(kind.model_fields)
    assert minimised(TRUST, record) == record.model_dump(mode="json", exclude_none=True)


def test_a_school_sees_no_clinical_detail_and_no_views() -> None:
    person = minimised(SCHOOL, fixture(Person))
    assert person is not None and set(person) == {"id", "upn", "name", "birth_date"}  # the UPN alone identifies
    contact = minimised(SCHOOL, fixture(Contact))
    assert contact is not None and "views" not in contact and "participants" not in contact
    assert minimised(SCHOOL, fixture(RegisterEntry)) is None  # no EpisodeOfCare in a school's profile


def event(*organisations: str) -> dict[str, object]:
    system = "https://fhir.nhs.uk/Id/ods-organization-code"
    return {"agent": [{"who": {"identifier": {"system": system, "value": o}}} for o in organisations]}


@pytest.mark.parametrize(
    ("caller", "seen"),
    [
        (Caller("trust-ehr", "rx4", "DIRECT_CARE", organisation_type="nhs-provider"), True),  # its own, any case
        (Caller("other", "RZZ", "DIRECT_CARE", organisation_type="nhs-provider"), False),
        (Caller("icb", "QX9", "AUDIT", frozenset({"system/AuditEvent.rs"}), organisation_type="icb"), True),
        (Caller("icb", "QX9", "AUDIT", frozenset({"system/Patient.rs"}), organisation_type="icb"), False),
        (Caller("la", "LA901", "AUDIT", frozenset({"system/*.rs"}), organisation_type="local-authority"), False),
    ],
)
def test_who_sees_an_audit_event(caller: Caller, seen: bool) -> None:
    assert may_see(caller, event("RX4"), frozenset({"icb"})) is seen


def test_break_glass_is_a_code_not_only_text() -> None:
    entry = AuditEntry("2026-01-01T00:00:00+00:00", "c", "RZZ", "EMERGENCY", "read", patients=("p",))
    plain = audit_event(entry)
    assert "meta" not in plain and len(plain["purposeOfEvent"]) == 1
    glass = audit_event(replace(entry, break_glass=True))
    assert glass["meta"]["security"] == [BREAK_GLASS]
    assert [c["code"] for p in glass["purposeOfEvent"] for c in p["coding"]] == ["ETREAT", "BTG"]


def test_each_recipient_gets_only_the_identifiers_its_context_uses() -> None:
    from gateway.sync import sharing
    from mappings.identifiers import NHS_NUMBER_SYSTEM
    from mappings.keyworking.urls import LA_CHILD_ID_PREFIX, UPN

    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [
            {"system": NHS_NUMBER_SYSTEM, "value": "9434765919"},
            {"system": UPN, "value": "A123456789012"},
            {"system": LA_CHILD_ID_PREFIX + "901", "value": "C-1"},
        ],
        "name": [{"family": "Ng"}],
    }

    def systems(recipient: Recipient) -> set[str]:
        reduced = sharing.reduce(recipient, patient)
        assert reduced is not None
        return {str(i["system"]) for i in reduced.get("identifier", [])}

    assert systems(Recipient.SCHOOL) == {UPN}
    assert systems(Recipient.CHILDRENS_HOME) == {NHS_NUMBER_SYSTEM, LA_CHILD_ID_PREFIX + "901"}
    assert systems(Recipient.YOUTH_JUSTICE) == {NHS_NUMBER_SYSTEM, LA_CHILD_ID_PREFIX + "901"}
    assert (
        systems(Recipient.LOCAL_AUTHORITY)
        == systems(Recipient.NHS_PROVIDER)
        == {
            NHS_NUMBER_SYSTEM,
            UPN,
            LA_CHILD_ID_PREFIX + "901",
        }
    )
    assert len(patient["identifier"]) == 3  # the stored resource is untouched
