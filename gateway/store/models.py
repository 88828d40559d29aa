"""Tables of the FHIR store (SQLAlchemy Core).

``resource`` holds the current version of every resource as its canonical JSON bytes (served as is on reads);
``resource_version`` keeps every version, including deletes. The ``sp_*`` tables hold search values extracted at
write time (see :mod:`gateway.store.indexing`), keyed by ``resource.pk``, so a search is an indexed query.
``outbox`` receives one event per write in the same transaction (relayed to Celery by the sync engine).

Times are integers: microseconds since the Unix epoch, UTC. The same on both dialects, and index-friendly.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BigInteger primary keys are plain INTEGER on SQLite so they alias the rowid and autoincrement.
PrimaryKeyInt = BigInteger().with_variant(Integer(), "sqlite")

resource = Table(
    "resource",
    metadata,
    Column("pk", PrimaryKeyInt, primary_key=True, autoincrement=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", LargeBinary, nullable=True),
    UniqueConstraint("res_type", "res_id", name="uq_resource_type_id"),
    Index("ix_resource_type_updated", "res_type", "last_updated"),
)

resource_version = Table(
    "resource_version",
    metadata,
    Column("res_type", String(64), primary_key=True),
    Column("res_id", String(64), primary_key=True),
    Column("version_id", Integer, primary_key=True),
    Column("last_updated", BigInteger, nullable=False),
    Column("method", String(8), nullable=False),  # create | update | delete
    Column("content", LargeBinary, nullable=True),
    Index("ix_resource_version_type_updated", "res_type", "last_updated"),
    Index("ix_resource_version_updated", "last_updated"),
)

sp_token = Table(
    "sp_token",
    metadata,
    Column("res_pk", PrimaryKeyInt, ForeignKey("resource.pk", ondelete="CASCADE"), nullable=False),
    Column("res_type", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("system", String(255), nullable=True),
    Column("code", String(255), nullable=True),
    Index("ix_sp_token_lookup", "res_type", "param", "code", "system"),
    Index("ix_sp_token_res", "res_pk"),
)

sp_string = Table(
    "sp_string",
    metadata,
    Column("res_pk", PrimaryKeyInt, ForeignKey("resource.pk", ondelete="CASCADE"), nullable=False),
    Column("res_type", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("norm", String(255), nullable=False),  # lower case, accents removed: default and :contains
    Column("exact", Text, nullable=False),  # as written: :exact
    # text_pattern_ops on PostgreSQL so that prefix matching (LIKE 'abc%') uses the index whatever the collation.
    Index("ix_sp_string_lookup", "res_type", "param", "norm", postgresql_ops={"norm": "text_pattern_ops"}),
    Index("ix_sp_string_res", "res_pk"),
)

sp_reference = Table(
    "sp_reference",
    metadata,
    Column("res_pk", PrimaryKeyInt, ForeignKey("resource.pk", ondelete="CASCADE"), nullable=False),
    Column("res_type", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(64), nullable=True),
    Column("target_url", Text, nullable=True),  # absolute or unparseable references, kept as written
    Index("ix_sp_reference_lookup", "res_type", "param", "target_id", "target_type"),
    Index("ix_sp_reference_target", "target_type", "target_id"),
    Index("ix_sp_reference_res", "res_pk"),
)

sp_date = Table(
    "sp_date",
    metadata,
    Column("res_pk", PrimaryKeyInt, ForeignKey("resource.pk", ondelete="CASCADE"), nullable=False),
    Column("res_type", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("low", BigInteger, nullable=False),  # first microsecond of the value's range
    Column("high", BigInteger, nullable=False),  # last microsecond of the value's range
    Index("ix_sp_date_low", "res_type", "param", "low"),
    Index("ix_sp_date_high", "res_type", "param", "high"),
    Index("ix_sp_date_res", "res_pk"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", PrimaryKeyInt, primary_key=True, autoincrement=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("method", String(8), nullable=False),
    Column("patient_id", String(64), nullable=True),  # the person the change is about: per-patient ordering
    Column("created_at", BigInteger, nullable=False),
    Column("relayed_at", BigInteger, nullable=True),
    Index("ix_outbox_unrelayed", "relayed_at", "id"),
)

INDEX_TABLES = (sp_token, sp_string, sp_reference, sp_date)
