"""ndjson files from pages of stored resources: one line per resource, the stored bytes as they are.

The writer holds one page at a time: each page is shaped (access rules, when there are any), joined and written,
then dropped before the next is read. A type's output is split into parts of at most ``part_size`` resources
(``Patient.1.ndjson``, ``Patient.2.ndjson``, ...); a type with nothing to export writes no file.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gateway.export.reader import Row

#: Turns one stored resource into the bytes this export may show (None: leave it out). None: show as stored.
Shaper = Callable[[str, Row], Awaitable[bytes | None]]
#: Called after every page with the number of resources written so far for the type.
Progress = Callable[[int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class OutputFile:
    res_type: str
    name: str  # file name inside the job's folder
    count: int


async def _shaped(res_type: str, page: Sequence[Row], shaper: Shaper | None) -> list[bytes]:
    if shaper is None:
        return [content for _, content in page]
    out = []
    for row in page:
        shown = await shaper(res_type, row)
        if shown is not None:
            out.append(shown)
    return out


async def write_type(
    res_type: str,
    pages: AsyncIterable[Sequence[Row]],
    folder: Path,
    *,
    part_size: int,
    shaper: Shaper | None = None,
    progress: Progress | None = None,
) -> list[OutputFile]:
    """Write every resource of the pages to ``folder/<type>.<n>.ndjson`` files; what was written."""
    files: list[OutputFile] = []
    handle: BinaryIO | None = None
    in_part = 0
    total = 0
    try:
        async for page in pages:
            lines = await _shaped(res_type, page, shaper)
            start = 0
            while start < len(lines):
                if handle is None or in_part == part_size:
                    if handle is not None:
                        handle.close()
                        files.append(OutputFile(res_type, files_name(res_type, len(files) + 1), in_part))
                    handle = open(folder / files_name(res_type, len(files) + 1), "wb")  # noqa: SIM115
                    in_part = 0
                take = lines[start : start + part_size - in_part]
                handle.write(b"\n".join(take) + b"\n")
                in_part += len(take)
                start += len(take)
            total += len(lines)
            if progress is not None:
                await progress(total)
    finally:
        if handle is not None:
            handle.close()
    if handle is not None and in_part:
        files.append(OutputFile(res_type, files_name(res_type, len(files) + 1), in_part))
    return files


def files_name(res_type: str, part: int) -> str:
    return f"{res_type}.{part}.ndjson"
