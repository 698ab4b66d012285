"""Filter fields on the pages' GET forms: an empty or mistyped field means "any" and the
page says so in words, instead of the API's 422 JSON (people submit forms half filled)."""

from __future__ import annotations

from datetime import date

from controller.domain import DAY_MAX, DAY_MIN


def lenient_day(value: str | None) -> tuple[date | None, str]:
    """(the day, or None for any) and a notice for the page when the field was not a day."""
    value = (value or "").strip()
    if not value:
        return None, ""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None, "Ngày không đúng dạng: bộ lọc ngày được bỏ qua."
    if not DAY_MIN <= day <= DAY_MAX:
        return None, "Ngày nằm ngoài phạm vi: bộ lọc ngày được bỏ qua."
    return day, ""


def lenient_page(value: str | None, last: int) -> int:
    """A page number between 1 and ``last`` (anything else: the nearest one)."""
    try:
        number = int(value or 1)
    except ValueError:
        number = 1
    return min(max(number, 1), max(last, 1))
