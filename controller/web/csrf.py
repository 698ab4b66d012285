"""CSRF protection: a signed double-submit token, checked in one place for every request
that a browser's cookies could forge.

The session cookie (``loaxa_session``) authenticates both the pages and, from the pages'
scripts, the JSON API. A cross-site form or fetch would carry that cookie too, so every
unsafe request (POST, PUT, PATCH, DELETE) authenticated by the cookie must also carry the
CSRF token: in the ``X-CSRF-Token`` header (scripts) or the ``csrf_token`` form field
(plain forms). The token lives in its own HttpOnly cookie and is written into each page;
another site can neither read it nor set it, because it is signed with the controller's
key. Requests with a bearer token (API clients, the CLI) carry no ambient credential and
pass unchecked; so do unauthenticated API calls (e.g. ``POST /api/auth/token``), which
the route itself guards. Page forms (everything outside ``/api/``) are always checked,
the login form included (login CSRF).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controller.api.deps import SESSION_COOKIE
from controller.api.errors import ErrorCode, error_body

CSRF_COOKIE = "loaxa_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_FORM_BYTES = 64 * 1024
"""Page forms are small; a bigger urlencoded body without the header is refused."""


def _sign(secret: str, nonce: str) -> str:
    mac = hmac.new(secret.encode(), f"csrf:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def new_token(secret: str) -> str:
    nonce = secrets.token_urlsafe(18)
    return f"{nonce}.{_sign(secret, nonce)}"


def well_signed(secret: str, token: str | None) -> bool:
    if not token or token.count(".") != 1:
        return False
    nonce, sig = token.split(".")
    return hmac.compare_digest(sig, _sign(secret, nonce))


def token_matches(secret: str, cookie: str | None, submitted: str | None) -> bool:
    """Double submit: what the request carries equals the cookie, and the cookie is ours."""
    return (cookie is not None and submitted is not None
            and hmac.compare_digest(cookie.encode(), submitted.encode())
            and well_signed(secret, cookie))


def request_cookies(scope: Scope) -> dict[str, str]:
    """The request's cookies exactly as authentication reads them (``request.cookies``).

    One parser for both, on purpose: this check once used ``http.cookies``, which gives up
    on the whole header at a malformed pair (``zz="x; loaxa_session=…``) while Starlette's
    parser skips the bad pair and still finds the session, so a forged request carried a
    session the CSRF check could not see.
    """
    return Request(scope).cookies


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return value.decode("latin-1")
    return None


def needs_check(scope: Scope, cookies: dict[str, str]) -> bool:
    if scope["type"] != "http" or scope["method"] not in UNSAFE:
        return False
    if not scope["path"].startswith("/api/"):
        return True  # a page form
    authorization = (_header(scope, b"authorization") or "").strip().lower()
    return SESSION_COOKIE in cookies and not authorization.startswith("bearer ")


class CSRFMiddleware:
    """Pure ASGI, so streaming responses (the alert stream) pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookies = request_cookies(scope)
        if not needs_check(scope, cookies):
            await self.app(scope, receive, send)
            return
        secret = scope["app"].state.runtime.secret_key
        submitted = _header(scope, CSRF_HEADER.encode())
        buffered: list[Message] = []
        content_type = (_header(scope, b"content-type") or "").lower()
        if submitted is None and content_type.startswith("application/x-www-form-urlencoded"):
            body = b""
            while True:
                message = await receive()
                buffered.append(message)
                body += message.get("body", b"")
                if len(body) > MAX_FORM_BYTES:
                    await _refuse(scope, send, 413, ErrorCode.body_too_large,
                                  "Biểu mẫu quá lớn.")
                    return
                if not message.get("more_body", False):
                    break
            submitted = (parse_qs(body.decode("utf-8", "replace")).get(CSRF_FIELD) or [None])[0]
        if not token_matches(secret, cookies.get(CSRF_COOKIE), submitted):
            await _refuse(scope, send, 403, ErrorCode.csrf_failed,
                          "Thiếu mã bảo vệ biểu mẫu hoặc mã không hợp lệ: tải lại trang rồi "
                          "thử lại.")
            return

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)


async def _refuse(scope: Scope, send: Send, status: int, code: ErrorCode, message: str) -> None:
    if scope["path"].startswith("/api/"):
        body = json.dumps(error_body(code, message), ensure_ascii=False).encode()
        ctype = b"application/json"
    else:
        body = ("<!doctype html><meta charset=utf-8><title>Lỗi</title>"
                f"<p>Yêu cầu bị từ chối ({status}): phiên làm việc hoặc mã bảo vệ biểu mẫu "
                "không hợp lệ. <a href=\"/login\">Tải lại trang</a> rồi thử lại.</p>").encode()
        ctype = b"text/html; charset=utf-8"
    headers: list[Any] = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
