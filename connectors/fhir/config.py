"""Configuration of the NHS FHIR connector."""

from __future__ import annotations

from pydantic import SecretStr

from connectors.base import ConnectorConfig


class FhirConfig(ConnectorConfig):
    """Where the FHIR server is and how to authenticate (a bearer token, held as a secret)."""

    bearer_token: SecretStr | None = None
