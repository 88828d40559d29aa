"""The ndjson writer: lines are the stored bytes, parts split at ``part_size``, and memory stays at one page."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import orjson

from gateway.export.reader import Row
from gateway.export.writer import files_name, write_type


def content(n: int, size: int = 1000) -> bytes:
    return orjson.dumps({"resourceType": "Patient", "id": f"p{n:07d}", "text": {"div": "x" * size}})


async def source(total: int, page_size: int, seen: list[int]) -> AsyncIterator[Sequence[Row]]:
    for start in range(0, total, page_size):
        seen.append(start)
        yield [(f"p{n:07d}", content(n)) for n in range(start, min(total, start + page_size))]


async def test_lines_are_the_stored_bytes_in_parts(tmp_path: Path) -> None:
    files = await write_type("Patient", source(25, 4, []), tmp_path, part_size=10)
    assert [(f.name, f.count) for f in files] == [(files_name("Patient", n), c) for n, c in ((1, 10), (2, 10), (3, 5))]
    lines = b"".join((tmp_path / f.name).read_bytes() for f in files).splitlines()
    assert lines == [content(n) for n in range(25)]


async def test_nothing_to_write_makes_no_file(tmp_path: Path) -> None:
    assert await write_type("Patient", source(0, 4, []), tmp_path, part_size=10) == []
    assert list(tmp_path.iterdir()) == []


async def test_shaper_leaves_out_and_replaces(tmp_path: Path) -> None:
    async def shaper(res_type: str, row: Row) -> bytes | None:
        number = int(row[0][1:])
        return None if number % 2 else b'{"id":"%d"}' % number

    files = await write_type("Patient", source(9, 4, []), tmp_path, part_size=100, shaper=shaper)
    assert files[0].count == 5
    assert (tmp_path / files[0].name).read_bytes().splitlines() == [b'{"id":"%d"}' % n for n in (0, 2, 4, 6, 8)]


async def peak_writing(total: int, folder: Path, seen: list[int]) -> int:
    tracemalloc.start()
    try:
        files = await write_type("Patient", source(total, 500, seen), folder, part_size=25_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(f.count for f in files) == total
    return peak


async def test_memory_is_bounded_by_a_page(tmp_path: Path) -> None:
    """Writing 60,000 resources of ~1 kB (60 MB) takes no more memory than writing 3,000: one page at a time."""
    small, large = tmp_path / "small", tmp_path / "large"
    small.mkdir()
    large.mkdir()
    seen: list[int] = []
    small_peak = await peak_writing(3_000, small, [])
    large_peak = await peak_writing(60_000, large, seen)
    assert len(seen) == 120
    assert sum(f.stat().st_size for f in large.iterdir()) > 60_000_000
    assert large_peak < small_peak * 1.3, f"{large_peak / 1e6:.1f} MB for 60,000 vs {small_peak / 1e6:.1f} MB for 3,000"
    assert large_peak < 20_000_000, f"peak {large_peak / 1e6:.1f} MB for pages of 0.5 MB"
