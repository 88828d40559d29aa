"""The table of bulk export jobs (same metadata as the FHIR store; migration 0009).

``export_job``: one row per kick-off. ``caller`` keeps who asked (JSON: client, organisation and its type, purpose,
scopes, development) so the worker applies the same access rules as the API would. ``status``: accepted → running →
done, or failed, or cancelled (the row is then deleted with its files). ``output`` is the manifest's output list
(JSON) once done. Times are microseconds since the epoch, UTC.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table, Text

from gateway.store.models import metadata

export_job = Table(
    "export_job",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("caller", Text, nullable=False),
    Column("kind", String(16), nullable=False),  # system | patient | group
    Column("group_id", String(64), nullable=True),
    Column("types", Text, nullable=False),  # comma list of the resource types asked for (or all)
    Column("since", BigInteger, nullable=True),
    Column("request_url", Text, nullable=False),
    Column("status", String(16), nullable=False),  # accepted | running | done | failed | cancelled
    Column("progress", String(200), nullable=False, default=""),
    Column("transaction_time", BigInteger, nullable=False),
    Column("output", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_export_job_client", "client_id"),
)
