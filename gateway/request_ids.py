"""Request ids: one id per HTTP request, in every log line written while it is handled and in every Celery task
it starts, so that an operator can follow one request from the API into the worker.

- :class:`RequestIds` (ASGI middleware) takes the caller's ``X-Request-ID`` when it is a plain token (letters,
  digits, ``.``, ``_``, ``-``, at most 64) or makes one, keeps it in a context variable while the request is handled
  and answers it in ``X-Request-ID``.
- :class:`RequestIdFilter` puts it on every log record (``request_id``; ``-`` outside a request); the JSON log
  formatter writes it as a field.
- :func:`carry_into_celery` connects Celery's signals: a task published while a request is handled carries the id
  in a message header, and the worker sets it around the task, so the task's log lines carry it too.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar, Token
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
#: The Celery message header the id travels in.
TASK_HEADER = "kwg_request_id"
_PLAIN = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
_current: ContextVar[str | None] = ContextVar("kwg_request_id", default=None)


def current_request_id() -> str | None:
    return _current.get()


def accepted(value: str | None) -> str:
    """The caller's id when it is a plain token, otherwise a new one (never echo arbitrary header content)."""
    return value if value is not None and _PLAIN.fullmatch(value) else uuid.uuid4().hex


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == HEADER.encode()), None)
        request_id = accepted(given)

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER.encode()]
                message = {**message, "headers": [*headers, (HEADER.encode(), request_id.encode())]}
            await send(message)

        token = _current.set(request_id)
        try:
            await self.app(scope, receive, answer)
        finally:
            _current.reset(token)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _current.get() or "-"
        return True


_task_tokens: dict[str, Token[str | None]] = {}


def _publishing(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = _current.get()
    if headers is not None and request_id is not None and TASK_HEADER not in headers:
        headers[TASK_HEADER] = request_id


def _task_starting(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    request_id = getattr(getattr(task, "request", None), TASK_HEADER, None)
    if task_id is not None and isinstance(request_id, str) and _PLAIN.fullmatch(request_id):
        _task_tokens[task_id] = _current.set(request_id)


def _task_done(task_id: str | None = None, **_: Any) -> None:
    token = _task_tokens.pop(task_id, None) if task_id is not None else None
    if token is not None:
        _current.reset(token)


def carry_into_celery() -> None:
    """Connect the Celery signals (once per process; safe to repeat)."""
    from celery import signals

    signals.before_task_publish.connect(_publishing, weak=False, dispatch_uid="kwg-request-id-publish")
    signals.task_prerun.connect(_task_starting, weak=False, dispatch_uid="kwg-request-id-prerun")
    signals.task_postrun.connect(_task_done, weak=False, dispatch_uid="kwg-request-id-postrun")
