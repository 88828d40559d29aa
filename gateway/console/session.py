"""The console session: a signed cookie (itsdangerous, timestamped) holding the operator's name and the CSRF token
that POST forms must echo. HttpOnly, SameSite=Lax, path ``/console``, Secure in production. Nothing else is kept
on the server; a session ends when its signature is older than ``KWG_CONSOLE_SESSION_MINUTES`` or on sign-out."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.responses import Response

COOKIE = "kwg_console"
PATH = "/console"


@dataclass(frozen=True, slots=True)
class Session:
    csrf: str
    operator: str | None = None


def fresh(operator: str | None = None) -> Session:
    """A new session with a new CSRF token (a sign-in always gets a new one)."""
    return Session(csrf=secrets.token_urlsafe(32), operator=operator)


class SessionCookies:
    def __init__(self, secret: str, max_age_seconds: int, *, secure: bool) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="kwg-console-session")
        self.max_age = max_age_seconds
        self.secure = secure

    def read(self, cookie: str | None) -> Session | None:
        """The session the cookie holds, or None when absent, forged or expired."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # SignatureExpired is a BadSignature
            return None
        if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
            return None
        operator = data.get("operator")
        return Session(csrf=data["csrf"], operator=operator if isinstance(operator, str) else None)

    def write(self, response: Response, session: Session) -> None:
        value = self._serializer.dumps({"csrf": session.csrf, "operator": session.operator})
        response.set_cookie(
            COOKIE,
            value,
            max_age=self.max_age,
            path=PATH,
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="lax", secure=self.secure)


def csrf_ok(session: Session | None, submitted: str | None) -> bool:
    return session is not None and submitted is not None and hmac.compare_digest(session.csrf, submitted)
