"""The API's error shape: a stable ``code`` for programs, a Vietnamese ``message`` for
people, and nothing technical (no paths, hosts or exception text).

``HTTPException(status, {"code": …, "message": …})`` answers ``{"detail": {"code": …,
"message": …}}``; request validation (422) answers ``{"detail": "field: msg", "errors":
[…], "code": "invalid_request", "message": …}`` (``controller/app.py``).
"""

from __future__ import annotations

from enum import StrEnum

from fastapi import HTTPException


class ErrorCode(StrEnum):
    invalid_request = "invalid_request"
    body_too_large = "body_too_large"
    upload_empty = "upload_empty"
    upload_too_large = "upload_too_large"
    upload_too_long = "upload_too_long"
    upload_not_audio = "upload_not_audio"
    upload_malformed = "upload_malformed"
    sign_in_required = "sign_in_required"
    account_disabled = "account_disabled"
    session_ended = "session_ended"
    forbidden = "forbidden"
    csrf_failed = "csrf_failed"
    wrong_password = "wrong_password"
    too_many_attempts = "too_many_attempts"
    not_found = "not_found"
    conflict = "conflict"


def api_error(status: int, code: ErrorCode, message: str,
              headers: dict[str, str] | None = None) -> HTTPException:
    """An ``HTTPException`` in the project's shape (raise it)."""
    return HTTPException(status, {"code": code.value, "message": message}, headers=headers)


def error_body(code: ErrorCode, message: str) -> dict[str, dict[str, str]]:
    """The same shape for responses written outside FastAPI (ASGI middleware)."""
    return {"detail": {"code": code.value, "message": message}}
