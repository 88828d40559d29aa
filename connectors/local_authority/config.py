"""Configuration of the local-authority connectors: the JSON API push and the CSV file drop.

Both carry a field mapping: an ordered map of target field (a JSON key or a CSV column) to a path in the
change's resource (``connectors.local_authority.paths``). Paths are parsed when the configuration is validated,
so a typo fails the destination's start-up check rather than a delivery at night.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, FileUrl, SecretStr, field_validator

from connectors.base import ConnectorConfig
from connectors.local_authority.paths import PathError, parse_path

#: Fields every document (and CSV row) carries, so the LA can apply changes in order and drop duplicates.
ENVELOPE_FIELDS: tuple[str, ...] = ("resource_type", "resource_id", "version_id", "deleted")

_FIELD = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


def _check_mapping(mapping: dict[str, str]) -> dict[str, str]:
    for target, path in mapping.items():
        if target in ENVELOPE_FIELDS:
            raise ValueError(f"{target!r} is an envelope field every document carries; choose another name")
        try:
            parse_path(path)
        except PathError as exc:
            raise ValueError(f"{target}: {exc}") from None
    return mapping


FieldMapping = Annotated[dict[Annotated[str, Field(pattern=_FIELD)], str], AfterValidator(_check_mapping)]


class LocalAuthorityConfig(ConnectorConfig):
    """The LA's children's social care API: where, how to authenticate, which fields, one at a time or batched."""

    api_key: SecretStr | None = None
    bearer_token: SecretStr | None = None
    mapping: FieldMapping
    batch: bool = False
    #: The LA's ODS code: the owner-agency of the C(E)TR recommendations it answers for.
    ods_code: str | None = Field(default=None, pattern=r"^[A-Z0-9]{3,10}$")
    health_path: str = "/health"


class LocalAuthorityCsvConfig(BaseModel):
    """A folder the LA collects CSV files from (``file:///srv/drop/la-820``); not an HTTP endpoint, so its own config
    (``ConnectorConfig.endpoint`` is an ``HttpUrl``, which refuses ``file://``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint: FileUrl
    columns: FieldMapping
    file_prefix: str = Field(default="kwg-changes", pattern=r"^[A-Za-z0-9_-]{1,40}$")

    @field_validator("endpoint")
    @classmethod
    def _local(cls, value: FileUrl) -> FileUrl:
        if value.host not in (None, "", "localhost"):
            raise ValueError("a file drop is a local folder: file:///path (no host)")
        if not value.path or value.path == "/":
            raise ValueError("a file drop needs a folder path, e.g. file:///srv/drop/la-820")
        return value
