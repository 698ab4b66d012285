"""A refused request says, in Vietnamese, which field is wrong and how (in the pages'
words, not the API's field names), and keeps the technical detail for programs."""

from __future__ import annotations

import re

import pytest

from controller.api.errors import FIELD_LABELS, validation_problem

ENGLISH_FIELD = re.compile(r"\b[a-z]+_[a-z_]+\b")


@pytest.mark.parametrize(("path", "body", "expected"), [
    ("/api/announcements", {"text": "x" * 5001}, "Nội dung: dài quá 5000 ký tự."),
    ("/api/announcements", {"text": "Xin chào", "start_at": "ngày mai"},
     "Giờ bắt đầu: ngày giờ không đúng dạng."),
    ("/api/emergency", {"text": "Bão", "volume": 150}, "Âm lượng: không được quá 100."),
    ("/api/emergency", {"text": "Bão", "repeat": 0}, "Số lần phát: phải từ 1 trở lên."),
    ("/api/emergency", {"text": "Bão", "targets": {"zones": ["thon-1"], "villages": ["x"]}},
     "Nơi phát: không có trong mẫu nhập."),
])
def test_a_refused_request_names_the_field_as_the_page_does(
        controller, path: str, body: dict, expected: str) -> None:  # type: ignore[no-untyped-def]
    r = controller.post(path, json=body)
    assert r.status_code == 422, r.text
    out = r.json()
    assert out["code"] == "invalid_request"
    assert expected in out["message"], out["message"]
    assert not ENGLISH_FIELD.search(out["message"]), out["message"]
    assert out["errors"][0]["field"].startswith("body.")  # for programs, as before


def test_every_known_problem_reads_in_vietnamese() -> None:
    assert validation_problem({"type": "missing", "loc": ("body", "password")}) == (
        "Mật khẩu: chưa điền.")
    assert validation_problem({"type": "greater_than_equal", "loc": ("query", "repeat"),
                               "ctx": {"ge": 1}}) == "Số lần phát: phải từ 1 trở lên."
    # an unknown field and an unknown problem still say something a person can act on
    assert validation_problem({"type": "brand_new", "loc": ("body", "x_y")}) == (
        "Nội dung gửi lên: không hợp lệ.")
    assert all(not ENGLISH_FIELD.search(label) for label in FIELD_LABELS.values())
