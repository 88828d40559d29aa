"""The numbers the register rules use, per ICS: one frozen model with a documented default for every figure.

Defaults follow domain.md (sections 1, 2 and 8); where the source gives no figure the default is marked [I]
(our inference) and an ICS should set its own. An ICS overrides any of them in a JSON or TOML file whose keys are
the field names (the lead wires the path as the ``KWG_RULES_FILE`` setting); unknown keys are refused, so a typo
cannot silently leave a default in force. docs/rules.md lists every field next to the rule that uses it.
"""

from __future__ import annotations

import json
import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.register.working_days import WorkingCalendar
from mappings.keyworking.terminology import DsrRating

Days = Annotated[int, Field(ge=1, le=366)]
Weeks = Annotated[int, Field(ge=1, le=104)]
Months = Annotated[int, Field(ge=1, le=60)]


class RulesConfig(BaseModel):
    """Every setting of the Dynamic Support Register and keyworking rules, with its default and its source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # -- the calendar --------------------------------------------------------------------------------------------
    bank_holiday_region: Literal["ENG", "WLS", "SCT", "NIR"] = Field(
        default="ENG",
        description="Whose bank holidays are not working days (England and Wales share theirs).",
    )
    extra_closures: tuple[date, ...] = Field(
        default=(),
        description="Further non-working days, e.g. a one-off bank holiday announced after the holidays release.",
    )

    # -- red: offer a community C(E)TR ---------------------------------------------------------------------------
    offer_community_cetr_working_days: Days = Field(
        default=5,
        description="[I] Working days after a red rating by which a community C(E)TR (or LAEP) is offered. "
        "No national figure; Devon's red means admission risk within 48 hours.",
    )

    # -- blue: admission -------------------------------------------------------------------------------------------
    post_admission_cetr_working_days: Days = Field(
        default=10,
        description="Working days after admission by which a post-admission C(E)TR is held when there was no "
        "community C(E)TR (NHSE commissioners page: 10, interim 5).",
    )
    community_cetr_lookback_months: Months = Field(
        default=6,
        description="[I] A community C(E)TR held this many months before admission (or fewer) counts as the "
        "review before admission; an older one does not.",
    )
    root_cause_analysis_working_days: Days = Field(
        default=20,
        description="[I] Working days after an admission without a community C(E)TR by which the root-cause "
        "analysis is due (domain.md gives the duty, not a deadline).",
    )
    inpatient_cetr_months_child: Months = Field(
        default=3, description="Months between inpatient C(E)TRs for children and young people (Oct 2021 update)."
    )
    inpatient_cetr_months_adult: Months = Field(
        default=6, description="Months between inpatient CTRs for adults (Oct 2021 update)."
    )
    inpatient_cetr_months_secure: Months = Field(
        default=12, description="Months between inpatient CTRs for adults in secure services (Oct 2021 update)."
    )
    oversight_visit_weeks_child: Weeks = Field(
        default=6, description="Weeks between commissioner oversight visits to a child inpatient."
    )
    oversight_visit_weeks_adult: Weeks = Field(
        default=8, description="Weeks between commissioner oversight visits to an adult inpatient."
    )
    oversight_visits_out_of_area_only: bool = Field(
        default=True,
        description="Oversight visits are for inpatients placed out of area (domain.md section 2); set false "
        "to schedule them for every inpatient.",
    )

    # -- discharge -------------------------------------------------------------------------------------------------
    post_discharge_rating: DsrRating = Field(
        default=DsrRating.RED,
        description="The rating a person gets on discharge (blue to not blue) (Lincolnshire: red).",
    )
    post_discharge_minimum_weeks: Weeks = Field(
        default=2,
        description="Weeks the post-discharge rating holds at least; also its next review (Lincolnshire: 2).",
    )

    # -- keyworking ------------------------------------------------------------------------------------------------
    monitoring_contact_months: Months = Field(
        default=1, description="Months between contacts while a case is in monitoring (domain.md section 8)."
    )

    @field_validator("post_discharge_rating")
    @classmethod
    def _not_blue(cls, rating: DsrRating) -> DsrRating:
        if rating is DsrRating.BLUE:
            raise ValueError("must not be blue: blue means still in hospital")
        return rating

    @property
    def calendar(self) -> WorkingCalendar:
        """The working-day calendar these settings describe."""
        return WorkingCalendar(self.bank_holiday_region, frozenset(self.extra_closures))

    def inpatient_cetr_months(self, *, adult: bool, secure: bool) -> int:
        """Months between inpatient reviews: CYP (adult=False) 3, adults 6, adults in secure services 12."""
        if not adult:
            return self.inpatient_cetr_months_child
        return self.inpatient_cetr_months_secure if secure else self.inpatient_cetr_months_adult

    def oversight_visit_weeks(self, *, adult: bool) -> int:
        return self.oversight_visit_weeks_adult if adult else self.oversight_visit_weeks_child


#: The national defaults, for callers with no rules file.
DEFAULT_RULES = RulesConfig()


class RulesFileError(ValueError):
    """A rules file that cannot be read or breaks a setting's limits; the message names the file and the field."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"rules file {path}: " + "; ".join(problems))
        self.path = path
        self.problems = problems


def parse_rules(data: Any, path: Path) -> RulesConfig:
    """Settings from already-parsed JSON or TOML (a table of field name → value)."""
    if not isinstance(data, dict):
        raise RulesFileError(path, ["must hold a table (object) of settings"])
    try:
        return RulesConfig.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()]
        raise RulesFileError(path, problems) from None


def load_rules(path: Path) -> RulesConfig:
    """Settings from a ``.json`` or ``.toml`` file; any setting the file leaves out keeps its default.

    Raises :class:`RulesFileError` naming the file and each bad field (``post_admission_cetr_working_days: Input
    should be greater than or equal to 1``).
    """
    suffix = path.suffix.lower()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RulesFileError(path, [f"cannot be read ({exc.strerror})"]) from None
    try:
        if suffix == ".json":
            data: Any = json.loads(raw)
        elif suffix == ".toml":
            data = tomllib.loads(raw.decode("utf-8"))
        else:
            raise RulesFileError(path, ["must end in .json or .toml"])
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RulesFileError(path, [f"is not valid {suffix[1:].upper()} ({exc})"]) from None
    return parse_rules(data, path)
