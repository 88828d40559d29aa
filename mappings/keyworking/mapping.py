"""One entry point for every record kind: ``to_fhir(record)`` and ``from_fhir(RecordType, resources)``.

The domain API writes what ``to_fhir`` returns (the main resource first; ids derived from the record's, so a
repeated write is an update, not a duplicate) and answers reads with ``from_fhir`` over the main resource and the
resources that point at it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from mappings.keyworking import care_team, case, contact, person, register, review
from mappings.keyworking.elements import Resource
from mappings.keyworking.records import (
    CareTeam,
    Contact,
    KeyworkingCase,
    Person,
    Record,
    RegisterEntry,
    ReviewMeeting,
)

R = TypeVar("R", bound=Record)

_TO: dict[type[Record], Callable[[Any], list[Resource]]] = {
    Person: person.to_fhir,
    RegisterEntry: register.to_fhir,
    KeyworkingCase: case.to_fhir,
    CareTeam: care_team.to_fhir,
    Contact: contact.to_fhir,
    ReviewMeeting: review.to_fhir,
}
_FROM: dict[type[Record], Callable[[Iterable[Resource]], Record]] = {
    Person: person.from_fhir,
    RegisterEntry: register.from_fhir,
    KeyworkingCase: case.from_fhir,
    CareTeam: care_team.from_fhir,
    Contact: contact.from_fhir,
    ReviewMeeting: review.from_fhir,
}

#: The record kinds the domain API serves, with the resource type of each one's main resource.
MAIN_RESOURCE: dict[type[Record], str] = {
    Person: "Patient",
    RegisterEntry: "EpisodeOfCare",
    KeyworkingCase: "EpisodeOfCare",
    CareTeam: "CareTeam",
    Contact: "Encounter",
    ReviewMeeting: "Encounter",
}


def to_fhir(record: Record) -> list[Resource]:
    """The FHIR resources a record maps to, the main one first."""
    try:
        mapper = _TO[type(record)]
    except KeyError:
        raise TypeError(f"no FHIR mapping for {type(record).__name__}") from None
    return mapper(record)


def from_fhir(kind: type[R], resources: Iterable[Resource]) -> R:
    """The record of this kind that these resources describe."""
    try:
        mapper = _FROM[kind]
    except KeyError:
        raise TypeError(f"no FHIR mapping for {kind.__name__}") from None
    return cast(R, mapper(resources))
