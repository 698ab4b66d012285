"""Request bodies are bounded before anything stores them.

One pure-ASGI middleware, outermost: a ``Content-Length`` above the route's limit is
refused (413) before a byte is read, and a body without one (chunked) is cut off as soon
as it passes the limit while it streams. Every route gets the small default; only the
upload route has a larger limit, and that route reads its body itself, after its
dependencies have authenticated and authorised the caller (FastAPI parses declared body
parameters *before* dependencies run, which is how an unauthenticated upload used to be
spooled to disk in full before its 401).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controller.api.errors import ErrorCode, api_error, error_body

DEFAULT_MAX_BODY = 2 << 20
"""JSON and form bodies: the largest valid one (10,000 target node ids) is well below."""
MULTIPART_OVERHEAD = 1 << 20
"""Room for the multipart headers and boundaries around an upload's file part."""


def too_large_message(limit: int) -> str:
    return f"Nội dung gửi lên quá lớn: tối đa {limit / 1e6:.0f} MB."


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, default: int = DEFAULT_MAX_BODY,
                 by_path: Mapping[str, int] | None = None) -> None:
        self.app, self.default, self.by_path = app, default, dict(by_path or {})

    def limit_for(self, path: str) -> int:
        return self.by_path.get(path.rstrip("/") or "/", self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise api_error(413, ErrorCode.body_too_large, too_large_message(limit))
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except Exception as exc:
            # inside FastAPI the 413 is an HTTPException and answered there; a middleware
            # that reads the body itself (the CSRF check) lets it reach this far
            if started or getattr(exc, "status_code", None) != 413:
                raise
            await _refuse(send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps(error_body(ErrorCode.body_too_large, too_large_message(limit)),
                      ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
