"""The development operator: beside the development client, ``kwg serve`` on a development machine makes a console
operator ``kwg-demo`` (acting for the demo ICB) with a random password in ``KWG_HOME/console-password`` (mode
0600), and prints how to sign in. Never in production."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from gateway.console.operators import add_operator, load, operators_path
from gateway.settings import Environment, Settings

OPERATOR = "kwg-demo"
ORGANISATION = "QX9"


def password_path(settings: Settings) -> Path:
    return settings.home / "console-password"


def ensure_development_operator(settings: Settings) -> tuple[str, Path]:
    """Make the development operator (once); returns its name and the file holding its password."""
    if settings.env is not Environment.DEVELOPMENT:
        raise RuntimeError("the development operator is for development only")
    path = password_path(settings)
    if path.exists() and OPERATOR in load(operators_path(settings)):
        return OPERATOR, path
    password = secrets.token_urlsafe(18)
    settings.home.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(password + "\n")
    os.chmod(path, 0o600)  # also when the file was there before
    add_operator(operators_path(settings), OPERATOR, ORGANISATION, "icb", password)
    return OPERATOR, path
