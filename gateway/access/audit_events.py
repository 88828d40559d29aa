"""Who may see which AuditEvents: the same rule for a read, a search, a history and a Bundle entry.

AuditEvents are about access, not about a person's care, so no sharing profile covers them. The rule:

1. a client sees the AuditEvents in which **its own organisation** is an agent (what its organisation did,
   including its refused requests);
2. a client whose organisation type is covered by a data sharing agreement (``KWG_SHARING_AGREEMENTS``, e.g. the
   ICB) and whose token allows reading AuditEvent (``system/AuditEvent.rs``, or ``system/*.rs``) sees **all** of
   them: the oversight the agreement exists for;
3. nobody else sees any. The development caller sees all.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gateway.auth import Caller
from gateway.security.scopes import allows
from mappings.identifiers import ODS_ORGANISATION_SYSTEM


def organisations_of(event: dict[str, Any]) -> Iterator[str]:
    """The organisations (ODS code, LA code, school URN; upper case) an AuditEvent names as agents."""
    for agent in event.get("agent", ()):
        who = agent.get("who") if isinstance(agent, dict) else None
        identifier = who.get("identifier") if isinstance(who, dict) else None
        if not isinstance(identifier, dict) or identifier.get("system") != ODS_ORGANISATION_SYSTEM:
            continue
        value = identifier.get("value")
        if isinstance(value, str):
            yield value.upper()


def sees_all(caller: Caller, agreements: frozenset[str]) -> bool:
    """Rule 2: a data sharing agreement for the caller's organisation type and a token that may read AuditEvent."""
    if caller.development:
        return True
    if caller.organisation_type not in agreements:
        return False
    scopes = " ".join(sorted(caller.scopes))
    return allows(scopes, "AuditEvent", "read") or allows(scopes, "AuditEvent", "search")


def may_see(caller: Caller, event: dict[str, Any], agreements: frozenset[str]) -> bool:
    """Whether this caller may see this AuditEvent (rules 1 to 3 above)."""
    if sees_all(caller, agreements):
        return True
    own = caller.organisation.upper()
    return any(org == own for org in organisations_of(event))
