"""The validator the repository runs on every write: FHIR R4 structure, then the profiles the resource claims.

Structure validation (fhir.resources, :func:`mappings.fhir.validate_structure`) runs on every write. Profile
validation (:mod:`gateway.conformance.validator`) runs only when ``meta.profile`` claims a profile we hold (UK Core
or ours); a resource that claims none costs nothing more. Compiled profiles are cached for the process.
Validation never runs on reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from gateway.conformance.loader import default_definitions
from gateway.conformance.validator import ProfileValidator
from gateway.errors import Issue
from mappings.fhir import validate_structure


@cache
def profile_validator(strict_extensions: bool = True) -> ProfileValidator:
    """A process-wide profile validator over the committed ``profiles/`` (compiled profiles cached inside).

    Writes use the lenient one (an unknown extension is a warning: partners add their own); ``$validate`` and
    ``kwg validate`` the strict one (an error, as the HL7 validator reports it).
    """
    return ProfileValidator(default_definitions(), strict_extensions=strict_extensions)


def structure_issues(resource: dict[str, Any]) -> list[Issue]:
    return [Issue(p.code, p.message, (p.path,)) for p in validate_structure(resource)]


def validate_resource(resource: dict[str, Any]) -> Sequence[Issue]:
    """Issues for a write: structure problems, plus profile problems when a known profile is claimed."""
    issues = structure_issues(resource)
    if issues:
        return issues
    claimed = ProfileValidator.claimed_profiles(resource)
    if not claimed:
        return issues
    validator = profile_validator(strict_extensions=False)
    known = [url for url in claimed if validator.knows(url)]
    if not known:
        return issues
    return [i for i in validator.validate(resource, known, base=False) if i.severity in ("error", "fatal")]


def validate_fully(resource: dict[str, Any], profiles: Iterable[str] = ()) -> list[Issue]:
    """Everything ``$validate`` and ``kwg validate`` report: structure, the base type, given and claimed profiles.

    Warnings and information are included (unknown profiles, best-practice invariants).
    """
    issues = structure_issues(resource)
    if isinstance(resource.get("resourceType"), str):
        issues += profile_validator().validate(resource, profiles, base=True)
    return list(dict.fromkeys(issues))
