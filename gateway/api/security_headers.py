"""Security headers on every HTTP answer (issue 6, hardening), added by a plain ASGI middleware.

The gateway serves children's health and care data to machines, not browsers, so the headers shut what a browser
could open: no caching anywhere between the gateway and the client (``no-store``: a shared proxy must not keep a
child's record), no content sniffing, no framing, no referrer, and a content security policy that allows nothing.
CORS is off (no ``Access-Control-*`` headers are ever sent), so browsers refuse cross-origin reads.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, exempt_prefixes: tuple[str, ...] = ("/docs", "/redoc")) -> None:
        self.app = app
        self.exempt_prefixes = exempt_prefixes  # the interactive API docs need scripts from their page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
