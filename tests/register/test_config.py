"""RulesConfig: documented defaults, loading from JSON and TOML, and errors that name the field."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.register.config import DEFAULT_RULES, RulesConfig, RulesFileError, load_rules
from gateway.register.working_days import WorkingCalendar
from mappings.keyworking.terminology import DsrRating


def test_defaults_are_the_documented_figures() -> None:
    rules = DEFAULT_RULES
    assert rules.post_admission_cetr_working_days == 10
    assert rules.community_cetr_lookback_months == 6
    assert (rules.inpatient_cetr_months_child, rules.inpatient_cetr_months_adult) == (3, 6)
    assert rules.inpatient_cetr_months_secure == 12
    assert (rules.oversight_visit_weeks_child, rules.oversight_visit_weeks_adult) == (6, 8)
    assert rules.post_discharge_rating is DsrRating.RED
    assert rules.post_discharge_minimum_weeks == 2
    assert rules.monitoring_contact_months == 1
    assert rules.calendar == WorkingCalendar("ENG")


def test_every_setting_is_documented() -> None:
    for name, field in RulesConfig.model_fields.items():
        assert field.description, name
    doc = (Path(__file__).parents[2] / "docs" / "rules.md").read_text(encoding="utf-8")
    for name in RulesConfig.model_fields:
        assert f"`{name}`" in doc, f"docs/rules.md does not list {name}"


def test_the_model_is_frozen_and_refuses_unknown_settings() -> None:
    with pytest.raises(ValidationError):
        DEFAULT_RULES.post_admission_cetr_working_days = 5  # type: ignore[misc]
    with pytest.raises(ValidationError, match="post_admission_cetr_days"):
        RulesConfig.model_validate({"post_admission_cetr_days": 5})


def test_inpatient_interval_by_age_and_setting() -> None:
    assert DEFAULT_RULES.inpatient_cetr_months(adult=False, secure=True) == 3
    assert DEFAULT_RULES.inpatient_cetr_months(adult=True, secure=False) == 6
    assert DEFAULT_RULES.inpatient_cetr_months(adult=True, secure=True) == 12
    assert DEFAULT_RULES.oversight_visit_weeks(adult=True) == 8


def test_a_toml_file_overrides_some_settings(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        'post_admission_cetr_working_days = 5\npost_discharge_rating = "amber"\nextra_closures = [2027-05-10]\n'
    )
    rules = load_rules(path)
    assert rules.post_admission_cetr_working_days == 5
    assert rules.post_discharge_rating is DsrRating.AMBER
    assert rules.calendar.extra_closures == frozenset({date(2027, 5, 10)})
    assert rules.inpatient_cetr_months_child == 3  # left out: the default


def test_a_json_file_overrides_some_settings(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(
        '{"oversight_visit_weeks_child": 4, "extra_closures": ["2027-05-10"], "bank_holiday_region": "WLS"}'
    )
    rules = load_rules(path)
    assert rules.oversight_visit_weeks_child == 4
    assert rules.calendar == WorkingCalendar("WLS", frozenset({date(2027, 5, 10)}))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"post_admission_cetr_working_days": 0}', "post_admission_cetr_working_days: Input should be greater than"),
        ('{"post_discharge_rating": "blue"}', "post_discharge_rating: Value error, must not be blue"),
        ('{"post_discharge_rating": "purple"}', "post_discharge_rating: Input should be"),
        ('{"bank_holiday_region": "FR"}', "bank_holiday_region: Input should be"),
        ('{"extra_closures": ["next tuesday"]}', "extra_closures.0: Input should be a valid date"),
        ('{"inpatient_cetr_months": 3}', "inpatient_cetr_months: Extra inputs are not permitted"),
        ("[1, 2]", "must hold a table"),
        ("{not json", "is not valid JSON"),
    ],
)
def test_json_errors_name_the_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.json"
    path.write_text(text)
    with pytest.raises(RulesFileError) as caught:
        load_rules(path)
    assert str(caught.value).startswith(f"rules file {path}: ")
    assert message in str(caught.value)


def test_toml_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("monitoring_contact_months = -1\noversight_visit_weeks_adult = 'eight'\n")
    with pytest.raises(RulesFileError) as caught:
        load_rules(path)
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "oversight_visit_weeks_adult",
        "monitoring_contact_months",
    ]
    path.write_text("post_admission_cetr_working_days = \n")
    with pytest.raises(RulesFileError, match="is not valid TOML"):
        load_rules(path)


def test_a_missing_file_or_other_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RulesFileError, match="cannot be read"):
        load_rules(tmp_path / "absent.toml")
    other = tmp_path / "rules.yaml"
    other.write_text("post_admission_cetr_working_days: 5\n")
    with pytest.raises(RulesFileError, match=r"must end in \.json or \.toml"):
        load_rules(other)
