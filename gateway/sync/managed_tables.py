"""Tables of destinations made through the API and of Subscription owners (migration 0008).

- ``sync_destination``: one row per destination made through ``/admin/destinations``: its configuration as JSON
  (the Destination model: names of secret variables, never secrets). A removed destination keeps its row with
  ``removed`` set (a tombstone), so ``max(updated_at)`` changes on every change and every process notices it.
- ``subscription_owner``: the client and organisation that created a FHIR Subscription; its notifications carry only
  what that organisation may see.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, String, Table, Text

from gateway.store.models import metadata

sync_destination = Table(
    "sync_destination",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("config", Text, nullable=False),
    Column("removed", Boolean, nullable=False, default=False),
    Column("updated_at", BigInteger, nullable=False),
)

subscription_owner = Table(
    "subscription_owner",
    metadata,
    Column("subscription_id", String(64), primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("organisation", String(32), nullable=False),
    Column("organisation_type", String(32), nullable=False),
    Column("development", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
)
