"""Tables of registered API clients and of client assertions already used (replay protection). Migration 0007."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, String, Table, Text

from gateway.store.models import metadata

api_client = Table(
    "api_client",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("organisation", String(32), nullable=False),
    Column("organisation_type", String(32), nullable=False),
    Column("scopes", Text, nullable=False),  # space-separated SMART scopes the client may be granted
    Column("jwks", Text, nullable=False),  # JSON Web Key Set of public keys
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
)

used_assertion = Table(
    "used_assertion",
    metadata,
    Column("jti", String(255), primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_used_assertion_expires", "expires_at"),
)
