"""The stored audit trail is hash-chained (KWG_AUDIT_HASH_CHAIN, on by default): ``kwg audit verify`` finds it
intact after real requests, and finds an event edited or deleted in the database behind the gateway's back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from gateway.app import create_app
from gateway.audit.cli import verify_stored
from gateway.cli import app as kwg
from gateway.settings import Settings
from gateway.store.migrate import upgrade
from gateway.store.models import resource
from tests.api.test_domain_api import API, record
from tests.conftest import _POSTGRES, DIALECTS
from tests.processes import scratch_postgres_database


@pytest.fixture(params=DIALECTS)
def own_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of the test's own: the trail is committed (and tampered with), never the shared test database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/chain.db"
        return
    if _POSTGRES.url is None:
        pytest.skip(f"PostgreSQL tests not run: {_POSTGRES.reason}")
    with scratch_postgres_database(_POSTGRES.url) as url:
        yield url


async def test_the_stored_trail_verifies_and_tampering_is_found(own_db_url: str, tmp_path: Path) -> None:
    db_url = own_db_url
    settings = Settings(home=tmp_path, database_url=db_url)  # type: ignore[arg-type]
    upgrade(settings, url=db_url)
    app = create_app(settings)
    engine = app.state.engine
    await app.state.audit.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as client:
            assert (await client.put(f"{API}/people/yp-amira-khan", json=record("person"))).status_code in (200, 201)
            for _ in range(3):
                await client.get(f"{API}/people/yp-amira-khan")
            await app.state.audit.flush()
            for _ in range(2):
                await client.get(f"{API}/people/yp-amira-khan")
            await app.state.audit.flush()
        stream = app.state.audit.chain.stream
        report = await verify_stored(engine)
        assert report.intact, report.problems
        assert report.heads[stream].sequence == 6

        async with engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(resource.c.pk, resource.c.content)
                    .where(resource.c.res_type == "AuditEvent")
                    .order_by(resource.c.pk)
                )
            ).all()
            ours = [(pk, orjson.loads(c)) for pk, c in rows if stream.encode() in c]
            pk, edited = ours[2]
            edited["outcome"] = "4"
            await conn.execute(update(resource).where(resource.c.pk == pk).values(content=orjson.dumps(edited)))
            await conn.execute(delete(resource).where(resource.c.pk == ours[4][0]))
        report = await verify_stored(engine)
        assert not report.intact
        assert any("edited" in p for p in report.problems) and any("missing" in p for p in report.problems)
        # The command line says the same and exits 1.
        env = {"KWG_HOME": str(tmp_path), "KWG_DATABASE_URL": db_url}
        result = await asyncio.to_thread(CliRunner().invoke, kwg, ["audit", "verify"], env=env)
        assert result.exit_code == 1, result.output
        assert "PROBLEM" in result.output and "the trail was changed" in result.output
    finally:
        await app.state.audit.stop()
        await engine.dispose()
