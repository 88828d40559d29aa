"""Alembic environment: runs migrations on the async engine of either dialect."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import gateway.security.tables  # noqa: F401  (registers the API client tables on the metadata)
import gateway.store.hl7_tables  # noqa: F401  (registers the HL7 inbox tables on the metadata)
import gateway.store.idempotency  # noqa: F401  (registers the idempotency table on the metadata)
import gateway.sync.managed_tables  # noqa: F401  (registers the API destination and Subscription owner tables)
import gateway.sync.tables  # noqa: F401  (registers the sync engine tables on the metadata)
from gateway.settings import load_settings
from gateway.store.db import create_engine
from gateway.store.models import metadata

config = context.config
target_metadata = metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    engine = create_engine(load_settings(), url=url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_online())
