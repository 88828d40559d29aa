"""What a rule decides: Tasks to raise, Tasks to close, and (on discharge) a rating to record.

A :class:`RuleTask` has a deterministic id: a UUID (version 5) of its *key*, ``<trigger>|<task type>|<sequence>``,
where the trigger is the record that raised it (``Observation/<entry>-rating-3``, ``Encounter/<meeting>``,
``EpisodeOfCare/<case>``) and the sequence tells apart several Tasks of one type from one trigger (the intensive
cycle number, for keyworking reviews). Running a rule again on the same event therefore gives the same ids, and a
PUT of the Task at its id (or a conditional create on its identifier) never makes a duplicate.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Annotated, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from mappings.keyworking import urls
from mappings.keyworking.records import RatingChange, RecommendationStatus, ResourceId, Text
from mappings.keyworking.terminology import TaskType

#: FHIR Task.status codes a rule Task moves through (the same codes as a recommendation's).
TaskStatus = RecommendationStatus

#: Statuses in which a Task still waits to be done.
OPEN_STATUSES: Final = frozenset({TaskStatus.REQUESTED, TaskStatus.ACCEPTED, TaskStatus.IN_PROGRESS})

#: The identifier system of rule Tasks; the value is the Task's key.
RULE_TASK_IDENTIFIER: Final = urls.naming_system("rule-task")
_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, RULE_TASK_IDENTIFIER)

#: ``<ResourceType>/<id>``: a literal reference to the record that raised a Task.
Trigger = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")]


def rule_task_id(key: str) -> str:
    """The Task id of a key: a UUID, so it fits FHIR's 64 characters whatever the trigger's id."""
    return str(uuid.uuid5(_NAMESPACE, key))


class RuleTask(BaseModel):
    """A Task a rule raised: what to do, for whom, about which episode, by when."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    task_type: TaskType
    trigger: Trigger
    sequence: Annotated[int, Field(ge=1)] = 1
    person_id: ResourceId
    episode_id: ResourceId = Field(description="The EpisodeOfCare (register entry or keyworking case) it is about")
    description: Text
    due: date
    authored_on: AwareDatetime
    status: TaskStatus = TaskStatus.REQUESTED
    overdue: bool = False

    @field_validator("task_type")
    @classmethod
    def _not_a_recommendation(cls, task_type: TaskType) -> TaskType:
        if task_type is TaskType.CETR_RECOMMENDATION:
            raise ValueError("C(E)TR recommendations are raised by a panel, not by a rule")
        return task_type

    @property
    def key(self) -> str:
        return f"{self.trigger}|{self.task_type.value}|{self.sequence}"

    @property
    def id(self) -> str:
        return rule_task_id(self.key)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class Closure(StrEnum):
    """How a rule closes a Task: done, or no longer needed."""

    COMPLETED = "completed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class TaskClosure:
    """Close the Task ``task_id`` with ``status``; ``reason`` says why (it becomes ``statusReason.text``)."""

    task_id: str
    status: Closure
    reason: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """Everything one event leads to. ``rating`` is a rating decision to record (only discharge makes one)."""

    raise_tasks: tuple[RuleTask, ...] = ()
    close_tasks: tuple[TaskClosure, ...] = ()
    rating: RatingChange | None = None

    def __add__(self, other: Outcome) -> Outcome:
        return Outcome(
            self.raise_tasks + other.raise_tasks,
            self.close_tasks + other.close_tasks,
            other.rating if other.rating is not None else self.rating,
        )

    @property
    def is_empty(self) -> bool:
        return not self.raise_tasks and not self.close_tasks and self.rating is None


NOTHING: Final = Outcome()
