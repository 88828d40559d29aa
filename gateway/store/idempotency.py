"""Remembered answers to writes sent with an ``Idempotency-Key`` header (the domain API).

A client that did not hear the answer to a write sends it again with the same key; the gateway answers with what it
answered the first time instead of writing twice. A key is remembered per client with a fingerprint of the request
(method, path and body): the same key with a different request is refused (422), because the client has mixed two
requests up. Keys expire after the configured retention.

The answer is remembered after the write commits. A crash in between loses only the memory, not the safety: a new
record's id is derived from the client and key (see ``gateway.domain.service.new_record_id``), so the retry writes
the same resources again rather than a second record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, String, Table, and_, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store.db import begin_write
from gateway.store.models import metadata
from gateway.store.repository import FhirRepository, SqlFhirRepository
from gateway.store.timeutil import now_us

idempotency_key = Table(
    "idempotency_key",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("location", String(512), nullable=True),
    Column("created_at", BigInteger, nullable=False, index=True),
)


@dataclass(frozen=True, slots=True)
class RememberedAnswer:
    fingerprint: str
    status: int
    body: bytes
    location: str | None


class IdempotencyStore:
    """Remembered answers, in the same database as the FHIR store."""

    def __init__(self, engine: AsyncEngine, *, conn: AsyncConnection | None = None, retention_hours: int = 24) -> None:
        self.engine = engine
        self._conn = conn
        self.retention_us = retention_hours * 3_600_000_000

    @classmethod
    def beside(cls, repo: FhirRepository, *, retention_hours: int = 24) -> IdempotencyStore:
        """The store on the repository's database (and inside its transaction when it is bound to one)."""
        if not isinstance(repo, SqlFhirRepository):
            raise TypeError(f"idempotency keys need the SQL store, not {type(repo).__name__}")
        return cls(repo.engine, conn=repo.bound_connection, retention_hours=retention_hours)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        if self._conn is not None:
            async with self._conn.begin_nested():
                yield self._conn
            return
        conn = await begin_write(self.engine)
        try:
            async with conn.begin():
                yield conn
        finally:
            await conn.close()

    async def recall(self, client_id: str, key: str) -> RememberedAnswer | None:
        """The answer remembered for this client's key, unless it has expired."""
        oldest = now_us() - self.retention_us
        query = select(
            idempotency_key.c.fingerprint, idempotency_key.c.status, idempotency_key.c.body, idempotency_key.c.location
        ).where(
            and_(
                idempotency_key.c.client_id == client_id,
                idempotency_key.c.key == key,
                idempotency_key.c.created_at >= oldest,
            )
        )
        async with self._connection() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else RememberedAnswer(row[0], row[1], row[2], row[3])

    async def remember(self, client_id: str, key: str, answer: RememberedAnswer) -> None:
        """Keep the answer (the first one wins when two identical requests race); forget expired keys."""
        now = now_us()
        try:
            async with self._connection() as conn:
                await conn.execute(
                    delete(idempotency_key).where(idempotency_key.c.created_at < now - self.retention_us)
                )
                await conn.execute(
                    insert(idempotency_key).values(
                        client_id=client_id,
                        key=key,
                        fingerprint=answer.fingerprint,
                        status=answer.status,
                        body=answer.body,
                        location=answer.location,
                        created_at=now,
                    )
                )
        except IntegrityError:
            pass  # an identical request finished first; its answer stands
