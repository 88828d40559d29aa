"""The FHIR repository: the one interface the API, the domain services and the connectors' tasks write through.

:class:`FhirRepository` is the contract; :class:`SqlFhirRepository` implements it on SQLAlchemy for SQLite and
PostgreSQL. Each write, in one database transaction: checks the resource (structure, and profiles when a
validator is configured), stores the new current version, appends it to the history, replaces its search-index
rows and appends an outbox event. Only after the commit does the caller answer.

A :meth:`FhirRepository.transaction` scope groups several interactions in one database transaction (FHIR
``transaction`` Bundles, domain services that write several resources); it commits all or nothing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

import orjson
from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import Gone, InvalidRequest, InvalidResource, Issue, NotFound, PreconditionFailed
from gateway.store import bulk, indexing
from gateway.store.db import begin_write, write_turn
from gateway.store.models import (
    INDEX_TABLES,
    outbox,
    resource,
    resource_version,
    sp_date,
    sp_reference,
    sp_string,
    sp_token,
)
from gateway.store.records import HistoryPage, Outcome, StoredResource, WriteResult
from gateway.store.search import SearchResult, execute_search, find_matches
from gateway.store.statements import fetch, fetch_one
from gateway.store.timeutil import now_us, to_instant

T = TypeVar("T")

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

#: Checks a resource before it is stored; returns the problems found (empty when valid).
Validator = Callable[[dict[str, Any]], Sequence[Issue]]


class FhirRepository(Protocol):
    """What every store offers. Errors are :mod:`gateway.errors` exceptions."""

    async def create(
        self,
        body: dict[str, Any],
        *,
        if_none_exist: Sequence[tuple[str, str]] | None = None,
        assigned_id: str | None = None,
    ) -> WriteResult: ...

    async def create_many(self, items: Sequence[tuple[dict[str, Any], str]]) -> list[WriteResult]: ...

    async def update_many(self, items: Sequence[tuple[dict[str, Any], str]]) -> list[WriteResult]: ...

    def check(self, body: dict[str, Any], res_type: str) -> None: ...

    async def read(self, res_type: str, res_id: str) -> StoredResource: ...

    async def read_current(self, keys: Sequence[tuple[str, str]]) -> list[StoredResource | None]: ...

    async def vread(self, res_type: str, res_id: str, version_id: int) -> StoredResource: ...

    async def update(
        self, res_type: str, res_id: str, body: dict[str, Any], *, if_match: int | None = None
    ) -> WriteResult: ...

    async def conditional_update(
        self,
        res_type: str,
        criteria: Sequence[tuple[str, str]],
        body: dict[str, Any],
        *,
        if_match: int | None = None,
    ) -> WriteResult: ...

    async def delete(self, res_type: str, res_id: str) -> WriteResult: ...

    async def conditional_delete(self, res_type: str, criteria: Sequence[tuple[str, str]]) -> list[WriteResult]: ...

    async def history(
        self,
        res_type: str | None,
        res_id: str | None,
        *,
        since: int | None = None,
        offset: int = 0,
        count: int = 20,
    ) -> HistoryPage: ...

    async def search(
        self, res_type: str, params: Sequence[tuple[str, str]], *, strict: bool = True
    ) -> SearchResult: ...

    def transaction(self, *, savepoints: bool = True) -> Any: ...


def _fail(problems: Sequence[Issue], res_type: str) -> InvalidResource:
    return InvalidResource(f"{res_type} failed validation: {len(problems)} issue(s)", issues=problems)


#: Reads are the hot path: fixed statements run by :mod:`gateway.store.statements` (asyncpg directly on PostgreSQL).
_READ_CURRENT = "SELECT version_id, last_updated, content FROM resource WHERE res_type = :res_type AND res_id = :res_id"
_READ_SOME = "SELECT res_type, res_id, version_id, last_updated, content FROM resource"
_READ_VERSION = (
    "SELECT last_updated, content, method FROM resource_version"
    " WHERE res_type = :res_type AND res_id = :res_id AND version_id = :version_id"
)


class SqlFhirRepository:
    """:class:`FhirRepository` on SQLAlchemy Core. Bound to a connection inside :meth:`transaction`."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        validator: Validator | None = None,
        conn: AsyncConnection | None = None,
        default_count: int = 20,
        max_count: int = 500,
        read_engine: AsyncEngine | None = None,
        savepoints: bool = True,
    ) -> None:
        self.engine = engine
        # Whether each interaction inside this repository's transaction scope runs under a savepoint (see
        # :meth:`transaction`).
        self._savepoints = savepoints
        # PostgreSQL reads outside a transaction scope run in autocommit: no BEGIN/ROLLBACK round trips for a
        # single SELECT (each statement sees committed data, as READ COMMITTED would). SQLite keeps its BEGIN.
        # A transaction scope's repository is given its parent's (making an option engine costs ~0.1 ms).
        if read_engine is None and engine.dialect.name == "postgresql":
            read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._read_engine = read_engine or engine
        self.validator = validator
        self._conn = conn
        self.default_count = default_count
        self.max_count = max_count

    @property
    def bound_connection(self) -> AsyncConnection | None:
        """The connection this repository is bound to inside a transaction scope (None outside one)."""
        return self._conn

    # -- connection scopes ------------------------------------------------------------------------------------

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        if self._conn is not None:
            if not self._savepoints:  # the scope fails as a whole (see transaction)
                yield self._conn
                return
            # Inside a transaction scope: a savepoint, so a failed interaction leaves no partial rows.
            async with self._conn.begin_nested():
                yield self._conn
            return
        async with write_turn(self.engine):
            conn = await begin_write(self.engine)
            try:
                async with conn.begin():
                    yield conn
            finally:
                await conn.close()

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        if self._conn is not None:
            yield self._conn
            return
        async with self._read_engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self, *, savepoints: bool = True) -> AsyncIterator[SqlFhirRepository]:
        """All interactions on the yielded repository commit together, or none do.

        Each interaction runs under a savepoint, so one that fails leaves no partial rows and the caller may go
        on. ``savepoints=False`` is for callers that never go on after a failed interaction: any error leaves
        the scope and rolls everything back, and the savepoints' round trips (four per interaction on
        PostgreSQL) are saved. A scope inside a scope always takes a savepoint of its own.
        """
        if self._conn is not None:
            async with self._conn.begin_nested():
                yield self
            return
        async with self._writing() as conn:
            yield SqlFhirRepository(
                self.engine,
                validator=self.validator,
                conn=conn,
                default_count=self.default_count,
                max_count=self.max_count,
                read_engine=self._read_engine,
                savepoints=savepoints,
            )

    # -- reads ------------------------------------------------------------------------------------------------

    async def read(self, res_type: str, res_id: str) -> StoredResource:
        async with self._reading() as conn:
            row = await fetch_one(conn, _READ_CURRENT, {"res_type": res_type, "res_id": res_id})
        if row is None:
            raise NotFound(f"{res_type}/{res_id} is not known")
        version_id, last_updated, content = row
        if content is None:
            raise Gone(
                f"{res_type}/{res_id} was deleted",
                headers={"ETag": f'W/"{version_id}"'},
            )
        return StoredResource(res_type, res_id, version_id, last_updated, content)

    async def read_current(self, keys: Sequence[tuple[str, str]]) -> list[StoredResource | None]:
        """The current version of each (type, id), in order, in one statement: None for one never written or
        deleted (several reads for the price of one round trip; a write reads its record and its person so)."""
        if not keys:
            return []
        binds: dict[str, Any] = {}
        wanted = []
        for n, (res_type, res_id) in enumerate(dict.fromkeys(keys)):
            binds[f"t{n}"], binds[f"i{n}"] = res_type, res_id
            wanted.append(f"(res_type = :t{n} AND res_id = :i{n})")
        sql = f"{_READ_SOME} WHERE {' OR '.join(wanted)}"
        async with self._reading() as conn:
            rows = await fetch(conn, sql, binds)
        found = {
            (res_type, res_id): StoredResource(res_type, res_id, version_id, last_updated, content)
            for res_type, res_id, version_id, last_updated, content in rows
            if content is not None
        }
        return [found.get(key) for key in keys]

    async def vread(self, res_type: str, res_id: str, version_id: int) -> StoredResource:
        async with self._reading() as conn:
            params = {"res_type": res_type, "res_id": res_id, "version_id": version_id}
            row = await fetch_one(conn, _READ_VERSION, params)
        if row is None:
            raise NotFound(f"{res_type}/{res_id} has no version {version_id}")
        last_updated, content, method = row
        if content is None:
            raise Gone(f"version {version_id} of {res_type}/{res_id} is a deletion")
        return StoredResource(res_type, res_id, version_id, last_updated, content, method)

    async def history(
        self,
        res_type: str | None,
        res_id: str | None,
        *,
        since: int | None = None,
        offset: int = 0,
        count: int = 20,
    ) -> HistoryPage:
        rv = resource_version
        conditions = []
        if res_type is not None:
            conditions.append(rv.c.res_type == res_type)
        if res_id is not None:
            conditions.append(rv.c.res_id == res_id)
        if since is not None:
            conditions.append(rv.c.last_updated >= since)
        where = and_(*conditions) if conditions else None
        count = max(0, min(count, self.max_count))
        async with self._reading() as conn:
            total_q = select(func.count()).select_from(rv)
            page_q = select(rv.c.res_type, rv.c.res_id, rv.c.version_id, rv.c.last_updated, rv.c.content, rv.c.method)
            if where is not None:
                total_q = total_q.where(where)
                page_q = page_q.where(where)
            total = (await conn.execute(total_q)).scalar_one()
            rows = (
                await conn.execute(
                    page_q.order_by(rv.c.last_updated.desc(), rv.c.version_id.desc()).offset(offset).limit(count)
                )
            ).all()
        if res_id is not None and total == 0:
            raise NotFound(f"{res_type}/{res_id} is not known")
        entries = [
            StoredResource(r.res_type, r.res_id, r.version_id, r.last_updated, r.content, r.method) for r in rows
        ]
        return HistoryPage(entries, total, offset, count)

    async def search(self, res_type: str, params: Sequence[tuple[str, str]], *, strict: bool = True) -> SearchResult:
        async with self._reading() as conn:
            return await execute_search(
                conn,
                res_type,
                params,
                strict=strict,
                default_count=self.default_count,
                max_count=self.max_count,
            )

    # -- writes -----------------------------------------------------------------------------------------------

    def _check(self, body: dict[str, Any], res_type: str) -> None:
        if not isinstance(body, dict):
            raise InvalidResource("the request body is not a JSON object")
        declared = body.get("resourceType")
        if declared != res_type:
            raise InvalidResource(
                f"resourceType {declared!r} does not match the endpoint type {res_type!r}",
                issues=[Issue("invalid", f"expected resourceType {res_type!r}", (f"{res_type}.resourceType",))],
            )
        if self.validator is not None:
            problems = self.validator(body)
            if any(p.severity in ("error", "fatal") for p in problems):
                raise _fail(problems, res_type)

    async def create(
        self,
        body: dict[str, Any],
        *,
        if_none_exist: Sequence[tuple[str, str]] | None = None,
        assigned_id: str | None = None,
    ) -> WriteResult:
        """Store a new resource under a server-assigned id.

        ``assigned_id`` lets a transaction Bundle choose the id before writing, so references to the entry's
        ``urn:uuid`` fullUrl can be rewritten in every entry first; it must be a fresh, valid id.
        """
        if assigned_id is not None and not ID_PATTERN.match(assigned_id):
            raise InvalidRequest(f"{assigned_id!r} is not a valid resource id")
        res_type = body.get("resourceType") if isinstance(body, dict) else None
        if not isinstance(res_type, str):
            raise InvalidResource("resourceType is missing", issues=[Issue("required", "resourceType is missing")])
        if not if_none_exist:
            self._check(body, res_type)
            new_id = assigned_id or str(uuid.uuid4())
            conflict = f"{res_type}/{new_id} was created concurrently; retry"
            created = await self._run_plan(
                lambda dialect: bulk.create_plan([(body, new_id)], now_us(), dialect, conflict)
            )
            return WriteResult(Outcome.CREATED, created[0])
        async with self._writing() as conn:
            if if_none_exist:
                matches = await find_matches(conn, res_type, if_none_exist, limit=2)
                if len(matches) > 1:
                    raise PreconditionFailed(f"If-None-Exist matched {len(matches)} or more {res_type} resources")
                if matches:
                    return WriteResult(Outcome.UNCHANGED, await self._current(conn, res_type, matches[0]))
            self._check(body, res_type)
            res_id = assigned_id or str(uuid.uuid4())
            stored = await self._store(conn, res_type, res_id, body, previous=None)
            return WriteResult(Outcome.CREATED, stored)

    def check(self, body: dict[str, Any], res_type: str) -> None:
        """Check a body as a write of ``res_type`` would (raises :class:`InvalidResource`), writing nothing."""
        self._check(body, res_type)

    async def create_many(self, items: Sequence[tuple[dict[str, Any], str]]) -> list[WriteResult]:
        """Create each (body, fresh id) with a few multi-row statements (large transaction Bundles).

        The bodies must have passed :meth:`check`: this path does not validate them again.
        """
        for _body, res_id in items:
            if not ID_PATTERN.match(res_id):
                raise InvalidRequest(f"{res_id!r} is not a valid resource id")
        stored = await self._run_plan(lambda dialect: bulk.create_plan(items, now_us(), dialect))
        return [WriteResult(Outcome.CREATED, s) for s in stored]

    async def update_many(self, items: Sequence[tuple[dict[str, Any], str]]) -> list[WriteResult]:
        """Update (or create under the given id) each (body, id), batched like :meth:`create_many`.

        The bodies must have passed :meth:`check` and carry their id; ids are distinct. No If-Match here: callers
        with a version precondition use :meth:`update`.
        """
        keys: list[tuple[str, str]] = []
        for body, res_id in items:
            if not ID_PATTERN.match(res_id) or body.get("id") != res_id:
                raise InvalidRequest(f"{res_id!r} is not a valid resource id or differs from the body's id")
            keys.append((body["resourceType"], res_id))
        written = await self._run_plan(lambda dialect: bulk.upsert_plan(items, dialect))
        return [WriteResult(Outcome.CREATED if created else Outcome.UPDATED, s) for created, s in written]

    async def _run_plan(self, plan: Callable[[str], bulk.Plan[T]]) -> T:
        """A batched write: inside the bound transaction (under a savepoint), or alone in one of its own."""
        if self._conn is not None:
            return await bulk.run(self._conn, plan(self._conn.dialect.name), savepoint=self._savepoints)
        async with self.engine.connect() as conn, write_turn(self.engine):
            return await bulk.run_alone(conn, plan(conn.dialect.name))

    async def update(
        self, res_type: str, res_id: str, body: dict[str, Any], *, if_match: int | None = None
    ) -> WriteResult:
        if not ID_PATTERN.match(res_id):
            raise InvalidRequest(f"{res_id!r} is not a valid resource id")
        if isinstance(body, dict) and body.get("id") != res_id:
            raise InvalidResource(
                "the resource id in the body must equal the id in the URL",
                issues=[Issue("invalid", f"expected id {res_id!r}, got {body.get('id')!r}", (f"{res_type}.id",))],
            )
        self._check(body, res_type)
        created, stored = await self._run_plan(
            lambda dialect: bulk.update_plan(res_type, res_id, body, if_match, dialect)
        )
        return WriteResult(Outcome.CREATED if created else Outcome.UPDATED, stored)

    async def conditional_update(
        self,
        res_type: str,
        criteria: Sequence[tuple[str, str]],
        body: dict[str, Any],
        *,
        if_match: int | None = None,
    ) -> WriteResult:
        async with self._writing() as conn:
            matches = await find_matches(conn, res_type, criteria, limit=2)
            if len(matches) > 1:
                raise PreconditionFailed(f"the conditional update matched more than one {res_type}")
            bound = SqlFhirRepository(self.engine, validator=self.validator, conn=conn)
            if not matches:
                given = body.get("id") if isinstance(body, dict) else None
                if isinstance(given, str):
                    return await bound.update(res_type, given, body, if_match=if_match)
                return await bound.create(body)
            target = matches[0]
            if isinstance(body, dict) and body.get("id") not in (None, target):
                raise InvalidResource(
                    "the body's id differs from the resource the criteria matched",
                    issues=[Issue("invalid", f"matched {res_type}/{target}", (f"{res_type}.id",))],
                )
            return await bound.update(res_type, target, {**body, "id": target}, if_match=if_match)

    async def delete(self, res_type: str, res_id: str) -> WriteResult:
        async with self._writing() as conn:
            previous = await self._lock(conn, res_type, res_id)
            if previous is None or previous[2]:
                return WriteResult(Outcome.NOTHING, None)
            pk, version, _deleted = previous
            ts = now_us()
            new_version = version + 1
            await conn.execute(
                update(resource)
                .where(resource.c.pk == pk)
                .values(version_id=new_version, last_updated=ts, deleted=True, content=None)
            )
            await conn.execute(
                insert(resource_version).values(
                    res_type=res_type, res_id=res_id, version_id=new_version, last_updated=ts, method="delete"
                )
            )
            for table in INDEX_TABLES:
                await conn.execute(delete(table).where(table.c.res_pk == pk))
            await conn.execute(
                insert(outbox).values(
                    res_type=res_type, res_id=res_id, version_id=new_version, method="delete", created_at=ts
                )
            )
            stored = StoredResource(res_type, res_id, new_version, ts, None, "delete")
            return WriteResult(Outcome.DELETED, stored)

    async def conditional_delete(self, res_type: str, criteria: Sequence[tuple[str, str]]) -> list[WriteResult]:
        async with self._writing() as conn:
            matches = await find_matches(conn, res_type, criteria, limit=self.max_count + 1)
            if len(matches) > self.max_count:
                raise PreconditionFailed(f"the conditional delete matched more than {self.max_count} resources")
            bound = SqlFhirRepository(self.engine, validator=self.validator, conn=conn)
            return [await bound.delete(res_type, res_id) for res_id in matches]

    # -- internals --------------------------------------------------------------------------------------------

    async def _lock(self, conn: AsyncConnection, res_type: str, res_id: str) -> tuple[int, int, bool] | None:
        """The current (pk, version, deleted) of a resource, locked for update on PostgreSQL."""
        q = select(resource.c.pk, resource.c.version_id, resource.c.deleted).where(
            resource.c.res_type == res_type, resource.c.res_id == res_id
        )
        if conn.dialect.name == "postgresql":
            q = q.with_for_update()
        row = (await conn.execute(q)).first()
        return None if row is None else (row.pk, row.version_id, bool(row.deleted))

    async def _current(self, conn: AsyncConnection, res_type: str, res_id: str) -> StoredResource:
        row = (
            await conn.execute(
                select(resource.c.version_id, resource.c.last_updated, resource.c.content).where(
                    resource.c.res_type == res_type, resource.c.res_id == res_id
                )
            )
        ).one()
        return StoredResource(res_type, res_id, row.version_id, row.last_updated, row.content)

    async def _store(
        self,
        conn: AsyncConnection,
        res_type: str,
        res_id: str,
        body: dict[str, Any],
        *,
        previous: tuple[int, int, bool] | None,
    ) -> StoredResource:
        ts = now_us()
        version = 1 if previous is None else previous[1] + 1
        meta = dict(body.get("meta") or {})
        meta["versionId"] = str(version)
        meta["lastUpdated"] = to_instant(ts)
        doc = {"resourceType": res_type, "id": res_id, "meta": meta}
        doc.update((k, v) for k, v in body.items() if k not in ("resourceType", "id", "meta"))
        content = orjson.dumps(doc)
        method = "create" if previous is None else "update"
        if previous is None:
            try:
                async with conn.begin_nested():
                    pk = (
                        await conn.execute(
                            insert(resource)
                            .values(
                                res_type=res_type,
                                res_id=res_id,
                                version_id=version,
                                last_updated=ts,
                                deleted=False,
                                content=content,
                            )
                            .returning(resource.c.pk)
                        )
                    ).scalar_one()
            except IntegrityError as exc:
                raise PreconditionFailed(f"{res_type}/{res_id} was created concurrently; retry") from exc
        else:
            pk = previous[0]
            await conn.execute(
                update(resource)
                .where(resource.c.pk == pk)
                .values(version_id=version, last_updated=ts, deleted=False, content=content)
            )
            for table in INDEX_TABLES:
                await conn.execute(delete(table).where(table.c.res_pk == pk))
        await conn.execute(
            insert(resource_version).values(
                res_type=res_type,
                res_id=res_id,
                version_id=version,
                last_updated=ts,
                method=method,
                content=content,
            )
        )
        await self._index(conn, pk, res_type, doc)
        await conn.execute(
            insert(outbox).values(
                res_type=res_type,
                res_id=res_id,
                version_id=version,
                method=method,
                patient_id=indexing.patient_id_of(doc),
                created_at=ts,
            )
        )
        return StoredResource(res_type, res_id, version, ts, content, method)

    async def _index(self, conn: AsyncConnection, pk: int, res_type: str, doc: dict[str, Any]) -> None:
        rows = indexing.extract(doc)
        base = {"res_pk": pk, "res_type": res_type}
        if rows.tokens:
            await conn.execute(
                insert(sp_token), [{**base, "param": p, "system": s, "code": c} for p, s, c in rows.tokens]
            )
        if rows.strings:
            await conn.execute(
                insert(sp_string), [{**base, "param": p, "norm": n, "exact": e} for p, n, e in rows.strings]
            )
        if rows.references:
            await conn.execute(
                insert(sp_reference),
                [
                    {**base, "param": p, "target_type": t, "target_id": i, "target_url": u}
                    for p, t, i, u in rows.references
                ],
            )
        if rows.dates:
            await conn.execute(
                insert(sp_date), [{**base, "param": p, "low": lo, "high": hi} for p, lo, hi in rows.dates]
            )
