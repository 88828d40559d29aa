"""Who is calling: every request passes :func:`current_caller`, which yields a :class:`Caller`.

Until authentication lands (the security issue) this is a development caller; the dependency is the one seam
where tokens will be checked, so no route changes when it does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from starlette.requests import Request


@dataclass(frozen=True, slots=True)
class Caller:
    """The client making a request, the organisation it acts for, and the purpose of use it declared."""

    client_id: str
    organisation: str  # ODS code, local authority code or school URN
    purpose: str  # e.g. DIRECT_CARE, ADMINISTRATION, AUDIT
    scopes: frozenset[str] = field(default_factory=frozenset)
    development: bool = False
    #: nhs-provider, local-authority, school, childrens-home, youth-justice, icb (decides data sharing agreements)
    organisation_type: str = "development"
    #: Why the caller invoked break-glass (``X-Break-Glass``), when it did and its organisation type may.
    break_glass: str | None = None


DEVELOPMENT_CALLER = Caller(
    client_id="development",
    organisation="DEVELOPMENT",
    purpose="DIRECT_CARE",
    scopes=frozenset({"system/*.*"}),
    development=True,
)


async def current_caller(request: Request) -> Caller:
    """The authenticated caller (development caller until authentication is configured), within its rate limit."""
    if request.app.state.settings.auth_on:
        from gateway.security.dependency import authenticated_caller

        caller = authenticated_caller(request)
    else:
        caller = DEVELOPMENT_CALLER
    reason = request.headers.get("x-break-glass")
    if reason:
        caller = replace(caller, break_glass=reason.strip()[:500])
    limiter = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        limiter.check(caller.client_id)
    return caller
