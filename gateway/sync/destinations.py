"""Destinations: where changes go, read from ``KWG_DESTINATIONS_FILE`` (TOML or JSON) and checked at start-up.

    [[destination]]
    name = "ics-shared-care-record"        # letters, digits and hyphens; appears in the delivery log
    connector = "fhir"                     # the kind of system (connectors.registry)
    endpoint = "https://scr.example.nhs.uk/fhir"
    recipient = "nhs-provider"             # which sharing profile applies (gateway.sync.sharing)
    bearer_token_env = "KWG_SECRET_SCR_TOKEN"   # the name of the variable holding the secret, never the secret
    lanes = 8                              # parallel lanes; a patient's changes stay in one, in order
    pull_types = ["Encounter"]             # optional: also pull these types from it, by _lastUpdated
    pull_every_seconds = 300
    batch_size = 50                        # changes per transaction Bundle
    max_attempts = 12                      # then the delivery is a dead letter

A bad file stops the gateway with one line per problem, naming the destination and field. Secrets are read from
the environment when the destination is built and held as ``SecretStr`` (never logged, never in ``repr``).
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, StringConstraints, ValidationError

from gateway.sync.sharing import Recipient

DestinationName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9\-]{0,62}$")]


class DestinationConfigError(Exception):
    """The destinations file cannot be used; ``problems`` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class Destination(BaseModel):
    """One system that receives changes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: DestinationName
    connector: str = Field(description="The kind of system, e.g. fhir")
    endpoint: HttpUrl
    recipient: Recipient = Field(description="The sharing profile: what this recipient may receive")
    resource_types: tuple[str, ...] | None = Field(
        default=None, description="Narrow the sharing profile's types further (never widen them)"
    )
    bearer_token_env: str | None = Field(default=None, description="Environment variable holding a bearer token")
    api_key_env: str | None = Field(default=None, description="Environment variable holding an API key")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="The connector's own settings (e.g. a local authority's field mapping and ODS code, a folder)",
    )
    lanes: int = Field(default=8, ge=1, le=256)
    batch_size: int = Field(default=50, ge=1, le=1000)
    max_attempts: int = Field(default=12, ge=1, le=100)
    backoff_base_seconds: float = Field(default=2.0, gt=0, le=3600)
    backoff_max_seconds: float = Field(default=600.0, gt=0, le=86400)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    enabled: bool = True
    pull_types: tuple[str, ...] = Field(
        default=(), description="Resource types to pull from this system by _lastUpdated (fhir connector only)"
    )
    pull_every_seconds: float | None = Field(default=None, gt=0, le=86400, description="How often to pull")

    def bearer_token(self) -> SecretStr | None:
        """The secret, read from the environment now (so a rotated secret is picked up by new workers)."""
        if self.bearer_token_env is None:
            return None
        value = os.environ.get(self.bearer_token_env)
        if not value:
            raise DestinationConfigError(
                [f"destination {self.name}: bearer_token_env: {self.bearer_token_env} is not set in the environment"]
            )
        return SecretStr(value)

    def api_key(self) -> SecretStr | None:
        if self.api_key_env is None:
            return None
        value = os.environ.get(self.api_key_env)
        if not value:
            raise DestinationConfigError(
                [f"destination {self.name}: api_key_env: {self.api_key_env} is not set in the environment"]
            )
        return SecretStr(value)

    def connector_settings(self) -> dict[str, Any]:
        """What the connector's builder gets: its own options, the endpoint and timeout, and the secrets."""
        settings: dict[str, Any] = {
            **self.options,
            "endpoint": str(self.endpoint),
            "timeout_seconds": self.timeout_seconds,
        }
        token, key = self.bearer_token(), self.api_key()
        if token is not None:
            settings["bearer_token"] = token
        if key is not None:
            settings["api_key"] = key
        return settings


class DestinationsFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    destination: tuple[Destination, ...] = ()


def parse_destinations(text: str, *, suffix: str = ".toml") -> tuple[Destination, ...]:
    """The destinations in a file's text; DestinationConfigError naming each problem."""
    try:
        data = json.loads(text) if suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise DestinationConfigError([f"the destinations file is not valid {suffix[1:].upper()}: {exc}"]) from None
    try:
        parsed = DestinationsFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = list(error["loc"])
            where = ".".join(str(p) for p in loc)
            if len(loc) >= 2 and loc[0] == "destination" and isinstance(loc[1], int):
                items = data.get("destination", []) if isinstance(data, dict) else []
                name = items[loc[1]].get("name") if loc[1] < len(items) and isinstance(items[loc[1]], dict) else None
                where = f"destination {name or loc[1]}: " + ".".join(str(p) for p in loc[2:])
            problems.append(f"{where}: {error['msg']}")
        raise DestinationConfigError(problems) from None
    names = [d.name for d in parsed.destination]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DestinationConfigError([f"destination {n}: the name is used twice" for n in duplicates])
    return parsed.destination


def load_destinations(path: Path | None) -> tuple[Destination, ...]:
    """The configured destinations (none without a file)."""
    if path is None:
        return ()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DestinationConfigError([f"cannot read the destinations file {path}: {exc.strerror}"]) from None
    return parse_destinations(text, suffix=path.suffix.lower() if path.suffix.lower() == ".json" else ".toml")
