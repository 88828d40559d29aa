"""One validated settings object, read from the environment (prefix ``KWG_``).

Nothing here runs at import time: call :func:`load_settings` where settings are needed (the app factory,
the CLI), and pass the object down.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


def _default_home() -> Path:
    return Path.home() / ".kwg"


class Settings(BaseSettings):
    """Gateway configuration. Every field can be set as ``KWG_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="KWG_", extra="ignore")

    env: Environment = Field(default=Environment.DEVELOPMENT, description="development or production")
    home: Path = Field(default_factory=_default_home, description="Folder for the embedded database and data")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL. Unset: SQLite under KWG_HOME (sqlite+aiosqlite:///<home>/gateway.db)",
    )
    database_pool_size: int = Field(
        default=20,
        ge=1,
        le=200,
        description="PostgreSQL connections each worker process keeps open (kept warm: no reconnect per request)",
    )
    database_max_overflow: int = Field(
        default=5,
        ge=0,
        le=200,
        description="Extra PostgreSQL connections a worker may open at a peak (closed again when returned)",
    )
    base_url: str | None = Field(
        default=None,
        description="Public base URL of the FHIR endpoint, used in links; unset: from the request",
    )
    default_page_size: int = Field(default=20, ge=1, le=1000, description="Search page size when _count is not given")
    max_page_size: int = Field(default=500, ge=1, le=10000, description="Largest _count honoured")
    idempotency_retention_hours: int = Field(
        default=24, ge=1, le=24 * 30, description="How long the domain API remembers an Idempotency-Key's answer"
    )
    max_request_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 beyond)"
    )
    log_level: str = Field(
        default="INFO", pattern=r"(?i)^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$", description="Log level"
    )
    log_json: bool = Field(default=False, description="Write logs as JSON lines (one object per record)")
    telemetry: bool = Field(
        default=False,
        description="Emit OpenTelemetry traces, metrics and logs (FastAPI native telemetry) to configured providers",
    )

    mllp_enabled: bool = Field(
        default=False, description="kwg serve also starts the HL7 v2 MLLP listener (as its own child process)"
    )
    mllp_host: str = Field(default="127.0.0.1", description="Address the HL7 v2 MLLP listener binds (kwg mllp)")
    mllp_port: int = Field(default=2575, ge=0, le=65535, description="Port of the HL7 v2 MLLP listener")
    mllp_max_message_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest HL7 v2 message accepted (AR with ERR beyond; the connection stays open)",
    )
    mllp_idle_timeout: float = Field(
        default=600.0, ge=0, description="Seconds an MLLP connection may stay silent before it is closed (0: never)"
    )
    mllp_tls_cert: Path | None = Field(
        default=None, description="PEM certificate: MLLP over TLS when set (with the key)"
    )
    mllp_tls_key: Path | None = Field(default=None, description="PEM private key of the MLLP TLS certificate")
    mllp_raw_retention_days: int = Field(
        default=30, ge=0, description="Days the raw HL7 v2 message is kept in the message log before it is purged"
    )

    hl7_mental_health_wards: str = Field(
        default="",
        description="Comma-separated PV1-3 ward/point-of-care codes that are mental-health inpatient settings",
    )
    hl7_mental_health_services: str = Field(
        default="",
        description="Comma-separated PV1-10 hospital service codes that are mental-health inpatient services",
    )
    hl7_mental_health_senders: str = Field(
        default="", description="Comma-separated MSH-4 sending ODS codes whose inpatients are all in mental-health beds"
    )
    auth: str = Field(
        default="on",
        pattern=r"^(on|off)$",
        description="on: every request needs a bearer token; off (development only, logged loudly): everyone is the "
        "development caller",
    )
    token_signing_key: Path | None = Field(
        default=None, description="PEM RSA private key that signs access tokens (development: made under KWG_HOME)"
    )
    token_lifetime_seconds: int = Field(default=300, ge=30, le=3600, description="How long an access token lasts")
    oidc_issuer: str | None = Field(
        default=None, description="External OpenID Connect issuer whose access tokens are also accepted (iss)"
    )
    oidc_jwks_url: str | None = Field(
        default=None, description="JWKS URL of the external issuer's signing keys (https:// in production)"
    )
    oidc_audience: str | None = Field(
        default=None, description="Audience (aud) the external issuer's tokens must name for this gateway"
    )
    sharing_agreements: str = Field(
        default="icb",
        description="Comma-separated organisation types with a data sharing agreement covering every person",
    )
    break_glass_types: str = Field(
        default="nhs-provider", description="Comma-separated organisation types that may read with a break-glass reason"
    )
    audit_hash_chain: bool = Field(
        default=True,
        description="Chain each process's AuditEvents by hash (gateway.audit.chain) so that tampering is evident",
    )
    rate_limit_per_minute: int = Field(
        default=60000, ge=0, description="Requests a minute each client may make (per worker process); 0: no limit"
    )
    rate_limit_burst: int = Field(default=200, ge=1, description="Requests a client may make at once above the rate")
    rules_file: Path | None = Field(
        default=None, description="TOML or JSON file overriding the register rules' defaults (docs/rules.md)"
    )
    broker_url: str | None = Field(
        default=None,
        description="Celery broker (e.g. redis://127.0.0.1:6379/0); unset: the embedded broker under KWG_HOME",
    )
    destinations_file: Path | None = Field(
        default=None, description="TOML or JSON file of the destinations changes are sent to (see docs/sync.md)"
    )
    relay_interval: float = Field(
        default=0.2, gt=0, le=60, description="Seconds the relay waits between looks at an empty outbox"
    )
    sweep_interval: float = Field(
        default=5.0, gt=0, le=3600, description="Seconds between sweeps for lanes with due deliveries and no worker"
    )
    lane_lease_seconds: float = Field(
        default=60.0, gt=1, le=3600, description="How long a worker holds a delivery lane before another may take it"
    )
    subscription_max_attempts: int = Field(
        default=12, ge=1, le=100, description="Attempts at one Subscription notification before it is a dead letter"
    )
    subscription_backoff_base_seconds: float = Field(
        default=2.0, gt=0, le=3600, description="First retry delay of a failed Subscription notification (doubles)"
    )
    subscription_error_after_attempts: int = Field(
        default=3, ge=1, le=100, description="Failed attempts at one notification before the Subscription shows error"
    )
    export_folder: Path | None = Field(
        default=None, description="Folder for bulk export files, one sub-folder per job; unset: KWG_HOME/exports"
    )
    export_page_size: int = Field(
        default=1000, ge=10, le=50_000, description="Resources a bulk export reads from the database per query"
    )
    export_file_resources: int = Field(
        default=100_000, ge=1, description="Most resources in one bulk export file (a type's output is split beyond)"
    )
    export_stalled_seconds: float = Field(
        default=120.0,
        gt=0,
        le=86_400,
        description="A bulk export job no worker took, or whose worker's progress stopped, for this long is queued "
        "again by the sweep",
    )
    console_secret: SecretStr | None = Field(
        default=None,
        description="Secret (32+ characters) that signs operations console session cookies; unset: made under "
        "KWG_HOME in development, the console is off in production",
    )
    console_session_minutes: int = Field(
        default=480, ge=5, le=24 * 60, description="How long an operations console sign-in lasts"
    )

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must not exceed max_page_size")
        oidc = (self.oidc_issuer, self.oidc_jwks_url, self.oidc_audience)
        if any(oidc) and not all(oidc):
            raise ValueError("KWG_OIDC_ISSUER, KWG_OIDC_JWKS_URL and KWG_OIDC_AUDIENCE must be set together")
        if self.env is Environment.PRODUCTION and self.oidc_jwks_url and not self.oidc_jwks_url.startswith("https://"):
            raise ValueError("KWG_OIDC_JWKS_URL must be an https:// URL in production")
        if self.auth_on is False and self.env is Environment.PRODUCTION:
            raise ValueError("KWG_AUTH=off is refused in production (KWG_ENV=production)")
        if (self.mllp_tls_cert is None) != (self.mllp_tls_key is None):
            raise ValueError("mllp_tls_cert and mllp_tls_key must be set together")
        if self.env is Environment.PRODUCTION and self.console_secret is not None:
            from gateway.console.secret import weak_secret_problem

            problem = weak_secret_problem(self.console_secret.get_secret_value())
            if problem is not None:
                raise ValueError(f"KWG_CONSOLE_SECRET is refused in production: {problem}")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.home / 'gateway.db'}"

    @property
    def auth_on(self) -> bool:
        return self.auth == "on"

    @property
    def resolved_broker_url(self) -> str:
        """The broker: the configured one, or the embedded filesystem broker (no server needed)."""
        return self.broker_url or "filesystem://"

    @property
    def embedded_broker_folder(self) -> Path:
        return self.home / "broker"

    @property
    def resolved_export_folder(self) -> Path:
        return self.export_folder or self.home / "exports"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; keyword overrides win (used by tests and the CLI)."""
    return Settings(**overrides)  # type: ignore[arg-type]
