"""The secret that signs console session cookies: given in production (and never a weak or placeholder one), made
once under ``KWG_HOME`` in development so every worker process of one gateway shares it."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from gateway.settings import Environment, Settings

MIN_LENGTH = 32
#: Values seen in examples and templates; a secret anyone can read is no secret.
PLACEHOLDERS = frozenset({"change-me", "changeme", "secret", "development", "console-secret", "kwg-console-secret"})


def weak_secret_problem(secret: str) -> str | None:
    """Why the secret may not sign sessions in production, or None when it may."""
    if secret.strip().lower() in PLACEHOLDERS:
        return "it is a placeholder value"
    if len(secret) < MIN_LENGTH:
        return f"it is shorter than {MIN_LENGTH} characters"
    if len(set(secret)) < 8:
        return "it repeats too few characters"
    return None


def secret_path(settings: Settings) -> Path:
    return settings.home / "console-secret"


def console_secret(settings: Settings) -> str | None:
    """The signing secret, or None when the console is off (production without ``KWG_CONSOLE_SECRET``)."""
    if settings.console_secret is not None:
        return settings.console_secret.get_secret_value()
    if settings.env is not Environment.DEVELOPMENT:
        return None
    path = secret_path(settings)
    if not path.exists():
        settings.home.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".console-secret-{os.getpid()}-{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
        try:
            os.link(draft, path)  # atomic, and refused when another worker process made it first
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()
