"""Request bodies of the domain API's actions (the records themselves are in ``mappings.keyworking.records``).

Each action is one small model that forbids unknown fields, so a misspelt field is a 422 naming it rather than
being ignored.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from mappings.keyworking.lifecycle import ReviewDecision
from mappings.keyworking.records import Agency, Professional, RecommendationStatus, RecordId
from mappings.keyworking.terminology import ClosureReason, KeyworkerChangeReason, RegisterStatus, ServiceModel


class Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class CaseReferral(Body):
    """A young person referred to a keyworking service (from the register): opens a case in the referred phase."""

    person_id: RecordId
    service_model: ServiceModel
    referred_on: date
    care_team_id: RecordId | None = None
    managing_organisation: Agency | None = Field(default=None, description="The keyworking service's organisation")


class OnDay(Body):
    """A move that takes effect on a day."""

    on: date


class Allocation(OnDay):
    keyworkers: Annotated[tuple[Professional, ...], Field(min_length=1, max_length=2)]


class CycleReview(OnDay):
    decision: ReviewDecision = Field(description="continue (another 12-week cycle) or step-down")


class Closure(OnDay):
    reason: ClosureReason


class AddedKeyworker(Body):
    keyworker: Professional


class KeyworkerHandover(OnDay):
    """One keyworker hands over to another; the reason is recorded on the care team (when the case names one)."""

    outgoing: Professional
    incoming: Professional
    reason: KeyworkerChangeReason
    agency: Agency | None = None


class RegisterStatusChange(OnDay):
    status: RegisterStatus


class MembershipEnd(OnDay):
    pass


class TeamKeyworkerChange(OnDay):
    outgoing_index: Annotated[int, Field(ge=0, description="Index of the outgoing keyworker in members")]
    incoming: Professional
    reason: KeyworkerChangeReason
    agency: Agency | None = None


class RecommendationUpdate(Body):
    status: RecommendationStatus
