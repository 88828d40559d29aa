"""Console operator accounts: a JSON file under ``KWG_HOME`` (``console-operators.json``, mode 0600), passwords
hashed with Argon2id (argon2-cffi). No database table: operators are few, and the file is read on each sign-in, so
``kwg console add-operator`` takes effect without a restart."""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.errors import InvalidRequest
from gateway.settings import Settings

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
ORGANISATION = re.compile(r"^[A-Z0-9]{3,12}$")
ORGANISATION_TYPES = ("icb", "nhs-provider", "local-authority", "school", "childrens-home", "youth-justice")
MIN_PASSWORD = 12

_hasher = PasswordHasher()
#: Verified against when the name is unknown, so an unknown name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    organisation: str  # ODS code the operator works for
    organisation_type: str  # decides what the access rules let the operator see
    password_hash: str


def operators_path(settings: Settings) -> Path:
    return settings.home / "console-operators.json"


def load(path: Path) -> dict[str, Operator]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {o["name"]: Operator(**o) for o in data.get("operators", [])}


def _save(path: Path, operators: dict[str, Operator]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"operators": [asdict(o) for o in sorted(operators.values(), key=lambda o: o.name)]}, out, indent=2)
    os.replace(draft, path)


def check_new(name: str, organisation: str, organisation_type: str, password: str) -> None:
    """Refuse (InvalidRequest) a name, organisation or password the console cannot take."""
    if not NAME.match(name):
        raise InvalidRequest("an operator name is 1-64 lower-case letters, digits, '.', '_' or '-'")
    if not ORGANISATION.match(organisation):
        raise InvalidRequest("the organisation is an ODS code: 3-12 upper-case letters and digits")
    if organisation_type not in ORGANISATION_TYPES:
        raise InvalidRequest(f"the organisation type is one of {', '.join(ORGANISATION_TYPES)}")
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest(f"a password has at least {MIN_PASSWORD} characters")


def add_operator(path: Path, name: str, organisation: str, organisation_type: str, password: str) -> Operator:
    """Add an operator, or set a new password and organisation for an existing one."""
    organisation = organisation.upper()
    check_new(name, organisation, organisation_type, password)
    operators = load(path)
    operator = Operator(name, organisation, organisation_type, _hasher.hash(password))
    operators[name] = operator
    _save(path, operators)
    return operator


def authenticate(path: Path, name: str, password: str) -> Operator | None:
    """The operator when the password is theirs, else None (the same work either way)."""
    operator = load(path).get(name)
    try:
        _hasher.verify(operator.password_hash if operator else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return operator
