"""Bad records fail with a pydantic error naming the field (the domain API's 422), good ones are normalised.

NHS numbers come from the shared test file (tests/fixtures/nhs-numbers/, see its PROVENANCE.md): 1,000 valid and
200 invalid numbers in the 999 test range.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mappings.keyworking.records import (
    CareTeam,
    Contact,
    KeyworkingCase,
    Person,
    RegisterEntry,
    ReviewMeeting,
    age_on,
    check_age,
)

NUMBERS = Path(__file__).parents[1] / "fixtures" / "nhs-numbers" / "nhs_numbers_999_range.csv"


def _numbers() -> list[tuple[str, bool]]:
    with NUMBERS.open() as f:
        return [(row["nhs_number"], row["mod11_valid"] == "true") for row in csv.DictReader(f)]


PERSON: dict[str, Any] = {"name": {"given": ["Amira"], "family": "Khan"}, "birth_date": "2011-05-04", "sex": "female"}


def _errors(model: Any, data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [(e["loc"], e["msg"]) for e in caught.value.errors()]


def test_person_accepts_exactly_the_valid_test_numbers() -> None:
    rows = _numbers()
    assert len(rows) == 1200
    accepted = []
    for number, _ in rows:
        spaced = f"{number[:3]} {number[3:6]} {number[6:]}"
        try:
            accepted.append(Person.model_validate({**PERSON, "nhs_number": spaced}).nhs_number == number)
        except ValidationError as exc:
            assert [e["loc"] for e in exc.errors()] == [("nhs_number",)]
            accepted.append(False)
    assert accepted == [valid for _, valid in rows]


def test_bad_nhs_number_names_the_field() -> None:
    [(loc, msg)] = _errors(Person, {**PERSON, "nhs_number": "9990115014"})
    assert loc == ("nhs_number",) and "Modulus 11" in msg


@pytest.mark.parametrize(
    ("field", "value", "loc"),
    [
        ("sex", "boy", ("sex",)),
        ("postcode", "NOT A POSTCODE", ("postcode",)),
        ("gp_practice", "B8-6001", ("gp_practice",)),
        ("upn", "I12345678901B", ("upn",)),  # I is never a check letter
        ("diagnoses", [{"diagnosis": "adhd"}], ("diagnoses", 0, "diagnosis")),
        ("diagnoses", [{"diagnosis": "autism"}, {"diagnosis": "autism"}], ("diagnoses", 1, "diagnosis")),
        ("nhs_number_verification", "01", ("nhs_number_verification",)),  # without an NHS number
        ("la_child_id", {"la_number": "82", "value": "X1"}, ("la_child_id", "la_number")),
        ("favourite_colour", "blue", ("favourite_colour",)),
    ],
)
def test_person_errors_name_the_field(field: str, value: Any, loc: tuple[Any, ...]) -> None:
    assert [e[0] for e in _errors(Person, {**PERSON, field: value})] == [loc]


def test_person_is_normalised() -> None:
    person = Person.model_validate(
        {
            **PERSON,
            "nhs_number": "999 001 1133",
            "postcode": " ls1   4ap ",
            "gp_practice": "b86001",
            "upn": "a12345678901b",
            "diagnoses": [{"diagnosis": "autism"}, {"diagnosis": "learning-disability"}],
        }
    )
    assert (person.nhs_number, person.postcode, person.gp_practice, person.upn) == (
        "9990011133",
        "LS1 4AP",
        "B86001",
        "A12345678901B",
    )
    assert [d.diagnosis.value for d in person.diagnoses] == ["learning-disability", "autism"]


def test_age_is_checked_against_a_given_day() -> None:
    person = Person.model_validate(PERSON)
    assert age_on(date(2008, 2, 29), date(2033, 2, 28)) == 24 and age_on(date(2008, 2, 29), date(2033, 3, 1)) == 25
    check_age(person, date(2036, 5, 3))  # 24
    for today, message in ((date(2037, 5, 4), "gives age 26"), (date(2011, 5, 3), "in the future")):
        with pytest.raises(ValidationError) as caught:
            check_age(person, today)
        [error] = caught.value.errors()
        assert error["loc"] == ("birth_date",) and message in error["msg"]


ENTRY: dict[str, Any] = {"person_id": "yp-1", "status": "on-register", "referred_on": "2025-01-06"}
RATING: dict[str, Any] = {
    "rating": "red",
    "reason": "Placement at risk of breakdown",
    "author": {"name": "Kim Ashworth"},
    "at": "2025-01-08T10:00:00Z",
    "next_review": "2025-01-22",
}


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"status": "closed", "ended_on": "2025-01-01"}, ("ended_on",)),  # end before start
        ({"status": "closed"}, ("ended_on",)),
        ({"ended_on": "2025-02-01"}, ("ended_on",)),  # still on the register
        ({"status": "on-hold"}, ("status",)),
        ({"ratings": [{**RATING, "rating": "purple"}]}, ("ratings", 0, "rating")),
        ({"ratings": [{**RATING, "next_review": "2025-01-07"}]}, ("ratings", 0, "next_review")),
        ({"ratings": [{**RATING, "at": "2025-01-08T10:00:00"}]}, ("ratings", 0, "at")),  # no time zone
        ({"ratings": [RATING, {**RATING, "at": "2025-01-07T10:00:00Z"}]}, ("ratings", 1, "at")),
        ({"ratings": [{**RATING, "at": "2025-01-01T10:00:00Z"}]}, ("ratings", 0, "at")),  # before the referral
        (
            {"ratings": [{**RATING, "author": {"name": "Mum", "reference": "RelatedPerson/m"}}]},
            ("ratings", 0, "author"),
        ),
        (
            {
                "consent": {
                    "basis": "assumed",
                    "status": "given",
                    "decided_by": {"name": "A"},
                    "decided_at": "2025-01-06T09:00:00Z",
                }
            },
            ("consent", "basis"),
        ),
    ],
)
def test_register_entry_errors_name_the_field(changes: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert [e[0] for e in _errors(RegisterEntry, {**ENTRY, **changes})] == [loc]


CASE: dict[str, Any] = {
    "person_id": "yp-1",
    "service_model": "nhs-ld-autism",
    "history": [
        {"phase": "referred", "start": "2025-01-06", "end": "2025-01-10"},
        {"phase": "allocated", "start": "2025-01-10"},
    ],
    "keyworkers": [{"name": "Kim Ashworth"}],
}


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"service_model": "befriending"}, ("service_model",)),
        ({"keyworkers": []}, ("keyworkers",)),
        ({"keyworkers": [{"name": "A"}, {"name": "B"}, {"name": "C"}]}, ("keyworkers",)),
        ({"closure_reason": "goals-met"}, ("closure_reason",)),
        ({"history": [{"phase": "referred", "start": "2025-01-06", "end": "2025-01-05"}]}, ("history", 0, "end")),
        ({"history": [{"phase": "intensive", "start": "2025-01-06"}]}, ("history", 0, "cycle")),
        (
            {
                "history": [
                    {"phase": "referred", "start": "2025-01-06", "end": "2025-01-08"},
                    {"phase": "allocated", "start": "2025-01-09"},
                ]
            },
            ("history", 1, "start"),
        ),
        (
            {"service_model": "childrens-home", "history": [{"phase": "monitoring", "start": "2025-01-06"}]},
            ("history", 0, "phase"),
        ),
    ],
)
def test_case_errors_name_the_field(changes: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert [e[0] for e in _errors(KeyworkingCase, {**CASE, **changes})] == [loc]


def test_care_team_errors_name_the_field() -> None:
    kw = {"role": "keyworker", "member": {"name": "K"}, "start": "2025-01-06"}
    team = {"person_id": "yp-1", "members": [kw, kw, {**kw, "start": "2025-02-01"}]}
    assert [e[0] for e in _errors(CareTeam, team)] == [("members", 2, "start")]
    wrong = {"person_id": "yp-1", "members": [{**kw, "role": "gp", "change_reason": "manager-decision"}]}
    assert [e[0] for e in _errors(CareTeam, wrong)] == [("members", 0, "change_reason")]
    family = {
        "role": "parent-or-carer",
        "member": {"name": "Mum", "reference": "RelatedPerson/m"},
        "start": "2025-01-06",
    }
    assert [
        e[0] for e in _errors(CareTeam, {"person_id": "yp-1", "members": [{**family, "agency": {"ods_code": "820"}}]})
    ] == [("members", 0, "agency")]
    assert [e[0] for e in _errors(CareTeam, {"person_id": "yp-1", "members": [{**kw, "end": "2025-01-01"}]})] == [
        ("members", 0, "end")
    ]


CONTACT: dict[str, Any] = {"person_id": "yp-1", "contact_type": "home-visit", "start": "2025-01-06T10:00:00+00:00"}


def test_contact_errors_name_the_field() -> None:
    assert [e[0] for e in _errors(Contact, {**CONTACT, "end": "2025-01-06T09:00:00+00:00"})] == [("end",)]
    assert [e[0] for e in _errors(Contact, {**CONTACT, "contact_type": "phone"})] == [("contact_type",)]
    young_person = {"person": {"name": "Amira", "reference": "Patient/yp-1"}}
    assert [e[0] for e in _errors(Contact, {**CONTACT, "participants": [young_person]})] == [
        ("participants", 0, "person")
    ]
    assert [e[0] for e in _errors(Contact, {**CONTACT, "views": "bell\x07"})] == [("views",)]


MEETING: dict[str, Any] = {
    "person_id": "yp-1",
    "register_entry_id": "dsr-1",
    "meeting_type": "community-cetr",
    "start": "2025-02-03T10:00:00+00:00",
    "panel": {"chair": {"name": "Chair"}, "expert_by_experience": {"name": "EbE"}, "clinical_expert": {"name": "Dr C"}},
}


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"meeting_type": "dsr-review"}, ("meeting_type",)),
        ({"meeting_type": "laep"}, ("panel", "expert_by_experience")),
        ({"end": "2025-02-03T09:00:00+00:00"}, ("end",)),
        ({"status": "planned", "needs_hospital": False}, ("needs_hospital",)),
        ({"register_entry_id": None, "case_id": "case-1"}, ("register_entry_id",)),
        (
            {
                "recommendations": [
                    {
                        "text": "x",
                        "owner": {"name": "A"},
                        "owner_agency": {"ods_code": "RGD"},
                        "due": "2025-03-01",
                        "status": "done",
                    }
                ]
            },
            ("recommendations", 0, "status"),
        ),
    ],
)
def test_meeting_errors_name_the_field(changes: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert [e[0] for e in _errors(ReviewMeeting, {**MEETING, **changes})] == [loc]


def test_records_refuse_unknown_fields_and_are_immutable() -> None:
    assert [e[0] for e in _errors(Contact, {**CONTACT, "mood": "good"})] == [("mood",)]
    contact = Contact.model_validate(CONTACT)
    with pytest.raises(ValidationError):
        contact.place = "Home"  # type: ignore[misc]
