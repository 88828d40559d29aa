"""Configuration of the education connector: the school's (or virtual school's) API and who the school is."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from connectors.base import ConnectorConfig


class EducationConfig(ConnectorConfig):
    """Where the school's API is, its URN and/or ODS code (recommendations it owns), and its credential."""

    school_urn: str | None = Field(default=None, pattern=r"^[0-9]{6}$")
    ods_code: str | None = Field(default=None, pattern=r"^[A-Z0-9]{3,10}$")
    bearer_token: SecretStr | None = None
    health_path: str = "/health"

    @model_validator(mode="after")
    def _someone(self) -> EducationConfig:
        if self.school_urn is None and self.ods_code is None:
            raise ValueError("give the school's URN or ODS code: the recommendations it owns are found by them")
        return self

    @property
    def school_codes(self) -> tuple[str, ...]:
        return tuple(c for c in (self.school_urn, self.ods_code) if c is not None)
