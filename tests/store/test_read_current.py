"""``read_current``: several current resources in one statement, the same answers as ``read`` one at a time."""

from __future__ import annotations

from gateway.errors import Gone, NotFound
from gateway.store.repository import SqlFhirRepository
from tests.store.test_repository import patient


async def _read_or_none(repo: SqlFhirRepository, res_type: str, res_id: str) -> tuple[int, bytes | None] | None:
    try:
        stored = await repo.read(res_type, res_id)
    except (NotFound, Gone):
        return None
    return stored.version_id, stored.content


async def test_read_current_agrees_with_read(repo: SqlFhirRepository) -> None:
    first = (await repo.create(patient("9000000009"))).resource
    second = (await repo.create(patient("9000000017", family="Jones"))).resource
    gone = (await repo.create(patient("9000000025"))).resource
    assert first is not None and second is not None and gone is not None
    await repo.update("Patient", second.res_id, {**patient("9000000017", family="Brown"), "id": second.res_id})
    await repo.delete("Patient", gone.res_id)
    keys = [
        ("Patient", second.res_id),
        ("Patient", "never-written"),
        ("Patient", gone.res_id),
        ("Observation", first.res_id),  # the id of a Patient, asked as another type
        ("Patient", first.res_id),
        ("Patient", second.res_id),  # asked twice: answered twice
    ]
    found = await repo.read_current(keys)
    assert len(found) == len(keys)
    for (res_type, res_id), stored in zip(keys, found, strict=True):
        expected = await _read_or_none(repo, res_type, res_id)
        assert (None if stored is None else (stored.version_id, stored.content)) == expected
        if stored is not None:
            assert (stored.res_type, stored.res_id) == (res_type, res_id)
    assert found[0] is not None and found[0].version_id == 2


async def test_read_current_of_nothing_is_empty(repo: SqlFhirRepository) -> None:
    assert await repo.read_current([]) == []


async def test_read_current_inside_a_transaction_sees_its_writes(repo: SqlFhirRepository) -> None:
    async with repo.transaction() as tx:
        created = (await tx.create(patient())).resource
        assert created is not None
        [stored] = await tx.read_current([("Patient", created.res_id)])
        assert stored is not None and stored.version_id == 1
