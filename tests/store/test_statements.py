"""Named placeholders become asyncpg's positional ones; the unbound (autocommit) read path works on both DBs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.store.repository import SqlFhirRepository
from gateway.store.statements import positional


def test_positional_numbers_each_name_once() -> None:
    sql, names = positional("a = :b0 AND b = :b1 OR c = :b0 LIMIT :page_limit ESCAPE '\\' AND d::text = 'x'")
    assert sql == "a = $1 AND b = $2 OR c = $1 LIMIT $3 ESCAPE '\\' AND d::text = 'x'"
    assert names == ("b0", "b1", "page_limit")


@given(st.lists(st.integers(0, 30), min_size=1, max_size=20))
def test_positional_keeps_the_order_of_first_use(indexes: list[int]) -> None:
    sql, names = positional(" AND ".join(f"x = :b{i}" for i in indexes))
    expected = list(dict.fromkeys(f"b{i}" for i in indexes))
    assert list(names) == expected
    assert sql == " AND ".join(f"x = ${expected.index(f'b{i}') + 1}" for i in indexes)


async def test_reads_and_searches_outside_a_transaction(engine: object) -> None:
    """A repository not bound to a test transaction: PostgreSQL takes the asyncpg path. Cleans up after itself."""
    from sqlalchemy.ext.asyncio import AsyncEngine

    assert isinstance(engine, AsyncEngine)
    repo = SqlFhirRepository(engine)
    made = await repo.create(
        {"resourceType": "Patient", "identifier": [{"system": "urn:test:statements", "value": "x1"}]}
    )
    assert made.resource is not None
    rid = made.resource.res_id
    try:
        assert (await repo.read("Patient", rid)).content == made.resource.content
        assert (await repo.vread("Patient", rid, 1)).version_id == 1
        found = await repo.search("Patient", [("identifier", "urn:test:statements|x1"), ("_total", "accurate")])
        assert [r.res_id for r in found.matches] == [rid] and found.total == 1
    finally:
        async with repo.transaction() as tx:
            await tx.delete("Patient", rid)
    gone = await repo.search("Patient", [("identifier", "urn:test:statements|x1")])
    assert gone.matches == []
