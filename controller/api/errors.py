"""The API's error shape, for every 4xx: a stable ``code`` for programs and a Vietnamese
``message`` for people at the top, next to ``detail`` (what the route raised: a string or
an object, kept as it was for existing clients), and nothing technical (no paths, hosts or
exception text). Request validation adds ``errors`` (every problem).

``api_error(status, code, message)`` raises with ``detail = {"code", "message"}``; the
handlers in ``controller/app.py`` add the top-level pair to every error, with a code and a
message per status where a route gave none.
"""

from __future__ import annotations

from enum import StrEnum

from fastapi import HTTPException

from controller.domain import DomainError


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
    bad_request = "bad_request"
    method_not_allowed = "method_not_allowed"
    unsupported_media_type = "unsupported_media_type"
    error = "error"


BY_STATUS: dict[int, tuple[ErrorCode, str]] = {
    400: (ErrorCode.bad_request, "Yêu cầu không đúng dạng."),
    401: (ErrorCode.sign_in_required, "Cần đăng nhập."),
    403: (ErrorCode.forbidden, "Bạn không có quyền làm việc này."),
    404: (ErrorCode.not_found, "Không tìm thấy."),
    405: (ErrorCode.method_not_allowed, "Phương thức không được hỗ trợ ở địa chỉ này."),
    409: (ErrorCode.conflict, "Xung đột với dữ liệu hiện có."),
    413: (ErrorCode.body_too_large, "Nội dung gửi lên quá lớn."),
    415: (ErrorCode.unsupported_media_type, "Định dạng không được hỗ trợ."),
    422: (ErrorCode.invalid_request, "Yêu cầu không hợp lệ."),
    429: (ErrorCode.too_many_attempts, "Quá nhiều yêu cầu: thử lại sau."),
}


def error_payload(status: int, detail: object) -> dict[str, object]:
    """The body of an error response: ``detail`` as raised, plus ``code`` and ``message``
    (from an ``api_error`` detail, else the status's own)."""
    code, message = BY_STATUS.get(status, (ErrorCode.error, "Có lỗi xảy ra."))
    if isinstance(detail, dict):
        code = detail.get("code", code.value)
        message = detail.get("message", message)
    return {"detail": detail, "code": str(code), "message": message}


def api_error(status: int, code: ErrorCode, message: str,
              headers: dict[str, str] | None = None) -> HTTPException:
    """An ``HTTPException`` in the project's shape (raise it)."""
    return HTTPException(status, {"code": code.value, "message": message}, headers=headers)


def refused(status: int, exc: DomainError, **extra: object) -> HTTPException:
    """A rule's refusal (``controller.domain.DomainError``): its code and Vietnamese
    message, and why in English (``reason``) for programs and logs."""
    return HTTPException(status, {"code": exc.code, "message": exc.message,
                                  "reason": str(exc), **extra})


def content_refused(exc: Exception) -> HTTPException:
    """Content that cannot be turned into audio (the reason stays in ``reason``); a
    reason people can fix says so in its own words (``ContentError.message``)."""
    return HTTPException(422, {"code": "content_invalid", "reason": str(exc), "message":
                               getattr(exc, "message", None)
                               or "Không tạo được âm thanh từ nội dung này: hãy kiểm tra "
                               "nội dung và bản ghi âm đã chọn."})


def error_body(code: ErrorCode, message: str) -> dict[str, object]:
    """The same shape for responses written outside FastAPI (ASGI middleware)."""
    return {"detail": {"code": code.value, "message": message}, "code": code.value,
            "message": message}
