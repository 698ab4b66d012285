"""The API's error shape, for every 4xx: a stable ``code`` for programs and a Vietnamese
``message`` for people at the top, next to ``detail`` (what the route raised: a string or
an object, kept as it was for existing clients), and nothing technical (no paths, hosts or
exception text). Request validation adds ``errors`` (every problem).

``api_error(status, code, message)`` raises with ``detail = {"code", "message"}``; the
handlers in ``controller/app.py`` add the top-level pair to every error, with a code and a
message per status where a route gave none.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

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


# validation, in words a staffer understands ---------------------------------------------
FIELD_LABELS: dict[str, str] = {
    "text": "Nội dung", "title": "Tiêu đề", "items": "Các phần của bản tin",
    "start_at": "Giờ bắt đầu", "until": "Ngày kết thúc", "times": "Giờ phát",
    "timing": "Thời gian phát", "rule": "Quy tắc lặp", "timezone": "Múi giờ",
    "targets": "Nơi phát", "zones": "Thôn", "groups": "Nhóm", "nodes": "Cụm loa",
    "node_ids": "Cụm loa", "all": "Cả xã", "volume": "Âm lượng", "repeat": "Số lần phát",
    "priority": "Mức ưu tiên", "kind": "Kiểu", "engine": "Cách đọc", "voice": "Giọng đọc",
    "announcement_id": "Bản tin", "upload": "Tệp ghi âm", "play_now": "Phát ngay",
    "username": "Tên đăng nhập", "password": "Mật khẩu", "full_name": "Họ tên",
    "role": "Vai trò", "note": "Ghi chú", "reason": "Lý do", "name": "Tên", "day": "Ngày",
    "since": "Từ ngày", "quiet_start": "Giờ bắt đầu yên lặng",
    "quiet_end": "Giờ kết thúc yên lặng", "lat": "Vĩ độ", "lon": "Kinh độ",
    "config_yaml": "Cấu hình", "trial_s": "Thời gian thử", "wait_s": "Thời gian chờ",
    "seconds": "Số giây", "action": "Việc cần làm", "state": "Trạng thái",
    "camera": "Camera", "status": "Trạng thái", "body": "Nội dung gửi lên",
}
"""Field names as the pages call them; a field not listed is called by its position."""

_PROBLEMS: dict[str, str] = {
    "missing": "chưa điền",
    "string_too_long": "dài quá {max_length} ký tự",
    "string_too_short": "cần ít nhất {min_length} ký tự",
    "too_long": "nhiều quá {max_length} mục",
    "too_short": "cần ít nhất {min_length} mục",
    "greater_than_equal": "phải từ {ge} trở lên",
    "greater_than": "phải lớn hơn {gt}",
    "less_than_equal": "không được quá {le}",
    "less_than": "phải nhỏ hơn {lt}",
    "int_parsing": "phải là một số nguyên", "int_type": "phải là một số nguyên",
    "int_from_float": "phải là một số nguyên",
    "float_parsing": "phải là một số", "float_type": "phải là một số",
    "bool_parsing": "chỉ nhận có hoặc không", "bool_type": "chỉ nhận có hoặc không",
    "datetime_parsing": "ngày giờ không đúng dạng", "datetime_type": "ngày giờ không đúng dạng",
    "datetime_from_date_parsing": "ngày giờ không đúng dạng",
    "timezone_aware": "cần ghi rõ múi giờ",
    "date_parsing": "ngày không đúng dạng", "date_from_datetime_parsing": "ngày không đúng dạng",
    "time_parsing": "giờ không đúng dạng",
    "enum": "không phải một lựa chọn có sẵn", "literal_error": "không phải một lựa chọn có sẵn",
    "extra_forbidden": "không có trong mẫu nhập",
    "json_invalid": "không đọc được (không phải JSON hợp lệ)",
    "string_pattern_mismatch": "có ký tự không được dùng",
    "string_type": "phải là chữ", "list_type": "phải là một danh sách",
    "dict_type": "phải là một nhóm giá trị", "model_type": "phải là một nhóm giá trị",
    "finite_number": "phải là một số hữu hạn",
}


def field_label(loc: Sequence[Any]) -> str:
    """The last named part of a location (``body.timing.start_at`` → "Giờ bắt đầu")."""
    for part in reversed([p for p in loc if isinstance(p, str)]):
        if part in FIELD_LABELS:
            return FIELD_LABELS[part]
    return "Nội dung gửi lên"


def validation_problem(error: dict[str, Any]) -> str:
    """One pydantic error as a Vietnamese sentence: which field, what is wrong."""
    template = _PROBLEMS.get(error.get("type", ""), "không hợp lệ")
    try:
        problem = template.format(**(error.get("ctx") or {}))
    except (KeyError, IndexError):
        problem = "không hợp lệ"
    return f"{field_label(error.get('loc', ()))}: {problem}."
