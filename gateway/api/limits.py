"""Request size limit on every route: 413 with an OperationOutcome, before a large body is read.

A declared ``Content-Length`` over the limit is refused at once. A body without one (chunked) is counted as it is
read; crossing the limit raises :class:`PayloadTooLarge` inside the route, which the error handlers answer in the
usual shape. (The FHIR routes also check in ``read_body``; this covers the domain API and everything else.)
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.outcomes import response_for
from gateway.errors import PayloadTooLarge


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                problem = PayloadTooLarge(f"the body is {int(value)} bytes; the limit is {self.max_bytes}")
                await response_for(problem)(scope, receive, send)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise PayloadTooLarge(f"the body is over the limit of {self.max_bytes} bytes")
            return message

        await self.app(scope, counted, send)
