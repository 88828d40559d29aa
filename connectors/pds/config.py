"""Configuration of the PDS connector (application-restricted access with a signed JWT).

NHS England registers an application with an API key and the public half of an RSA key pair (found by ``kid``);
the connector holds the private half. The key is given inline (``private_key_pem``, e.g. from a secret store) or as
a file (``private_key_path``), never both: the file is read when the connector is built, not at import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, HttpUrl, SecretStr, model_validator

from connectors.base import ConfigurationError, ConnectorConfig

#: PDS allows 5 transactions per second per application.
PDS_RATE_PER_SECOND = 5


class PdsConfig(ConnectorConfig):
    """Where PDS and its token endpoint are, and the application's credentials (secrets, never logged).

    ``endpoint`` is the FHIR base, e.g. ``https://int.api.service.nhs.uk/personal-demographics/FHIR/R4``;
    ``token_url`` is the OAuth 2.0 token endpoint, e.g. ``https://int.api.service.nhs.uk/oauth2/token``.
    """

    token_url: HttpUrl
    api_key: SecretStr
    kid: str = Field(min_length=1)
    private_key_pem: SecretStr | None = None
    private_key_path: Path | None = None
    rate_per_second: int = Field(default=PDS_RATE_PER_SECOND, ge=1)
    #: Renew the access token this many seconds before it expires, so a request never carries a stale one.
    token_refresh_margin_seconds: float = Field(default=30.0, ge=0)

    @model_validator(mode="after")
    def _one_private_key(self) -> Self:
        if (self.private_key_pem is None) == (self.private_key_path is None):
            raise ValueError("give exactly one of private_key_pem and private_key_path")
        return self

    def private_key(self) -> SecretStr:
        """The private key in PEM, read from the file when configured as a path."""
        if self.private_key_pem is not None:
            return self.private_key_pem
        assert self.private_key_path is not None  # the validator guarantees one of the two
        try:
            return SecretStr(self.private_key_path.read_text())
        except OSError as exc:
            raise ConfigurationError(f"the PDS private key file cannot be read ({type(exc).__name__})") from None
