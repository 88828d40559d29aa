"""SMART scopes, v1 (``system/CareTeam.read``, ``system/*.write``, ``system/Patient.*``) and v2
(``system/CareTeam.rs``, ``system/*.cruds``), as (resource type or ``*``, permissions c r u d s)."""

from __future__ import annotations

import re
from dataclasses import dataclass

V1 = {"read": frozenset("rs"), "write": frozenset("cud"), "*": frozenset("cruds")}
INTERACTIONS = {"create": "c", "read": "r", "update": "u", "delete": "d", "search": "s"}
_SCOPE = re.compile(r"^(system|user|patient)/(\*|[A-Z][A-Za-z]+)\.(read|write|\*|c?r?u?d?s?)$")


@dataclass(frozen=True, slots=True)
class Scope:
    resource_type: str  # a type, or "*"
    permissions: frozenset[str]  # subset of "cruds"

    def allows(self, res_type: str, interaction: str) -> bool:
        code = INTERACTIONS[interaction]
        return (self.resource_type in ("*", res_type)) and code in self.permissions


def parse_scope(text: str) -> Scope | None:
    """A system scope, or None when the text is not one (openid, launch, user/patient scopes are not granted)."""
    match = _SCOPE.match(text.strip())
    if match is None or match.group(1) != "system" or match.group(3) == "":
        return None
    rights = match.group(3)
    return Scope(match.group(2), V1.get(rights, frozenset(rights)))


def parse_scopes(text: str) -> list[Scope]:
    return [s for s in (parse_scope(part) for part in text.split()) if s is not None]


def allows(scopes: str, res_type: str, interaction: str) -> bool:
    return any(scope.allows(res_type, interaction) for scope in parse_scopes(scopes))


def grant(requested: str, allowed: str) -> str:
    """The requested scopes the client may have (each requested scope kept only if an allowed one covers it)."""
    granted = []
    allowed_scopes = parse_scopes(allowed)
    for part in requested.split():
        scope = parse_scope(part)
        if scope is None:
            continue
        covered = all(
            any(a.resource_type in ("*", scope.resource_type) and p in a.permissions for a in allowed_scopes)
            for p in scope.permissions
        ) and (scope.resource_type != "*" or any(a.resource_type == "*" for a in allowed_scopes))
        if covered:
            granted.append(part)
    return " ".join(granted)
