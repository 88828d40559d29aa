"""The overdue sweep over the store: flag open Tasks past their due date (``businessStatus`` overdue) so that
``Task?business-status=overdue`` finds them, and unflag those rescheduled into the future. Run by the beat
scheduler (hourly) and by ``kwg tasks sweep-overdue``; safe to run at any time, any number of times."""

from __future__ import annotations

from datetime import date

import orjson

from gateway.register.overdue import OPEN_TASK_STATUSES, sweep_overdue
from gateway.store.repository import FhirRepository

PAGE = 500


async def sweep_overdue_tasks(repo: FhirRepository, today: date) -> tuple[int, int]:
    """Flag and unflag; returns (flagged, cleared)."""
    statuses = ",".join(sorted(OPEN_TASK_STATUSES))
    offset, flagged, cleared = 0, 0, 0
    while True:
        page = await repo.search(
            "Task", [("status", statuses), ("_count", str(PAGE)), ("_offset", str(offset)), ("_sort", "_id")]
        )
        tasks = [orjson.loads(r.content) for r in page.matches if r.content is not None]
        result = sweep_overdue(tasks, today)
        for task in result.changed:
            meta = {k: v for k, v in task.get("meta", {}).items() if k not in ("versionId", "lastUpdated")}
            body = {**task, "meta": meta} if meta else {k: v for k, v in task.items() if k != "meta"}
            await repo.update("Task", str(task["id"]), body)
        flagged += len(result.flagged)
        cleared += len(result.cleared)
        if not page.has_next:
            return flagged, cleared
        offset += PAGE
