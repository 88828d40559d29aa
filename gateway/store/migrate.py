"""Apply Alembic migrations (``kwg db upgrade``); also used by the app at start-up on the embedded database."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from gateway.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(settings: Settings, revision: str = "heads", *, url: str | None = None) -> None:
    """Bring the database to ``revision``. Safe to run repeatedly. Runs in its own event loop/thread."""
    cfg = alembic_config(url or settings.resolved_database_url)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(cfg, revision)
        return
    # Called from inside an event loop: Alembic's env runs its own loop, so use a worker thread.
    import threading

    errors: list[BaseException] = []

    def _work() -> None:
        try:
            command.upgrade(cfg, revision)
        except BaseException as exc:  # re-raised in the caller's thread below
            errors.append(exc)

    thread = threading.Thread(target=_work)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
