"""When a schedule plays: once, an RFC 5545 rule, or a cron expression, in its time zone.

Rules are expanded in the schedule's own zone (by default the commune's, ``LOAXA_TIMEZONE``)
so "every weekday at 06:00" means 06:00 on the commune's wall clock, then converted to UTC
for plans.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter
from dateutil.rrule import rrulestr

from controller.domain import DomainError
from controller.localtime import zone_name

MAX_OCCURRENCES = 10_000
_TICK = timedelta(microseconds=1)


class TimingError(DomainError):
    """A rule that cannot be used; the message names the problem."""


@dataclass(frozen=True)
class Timing:
    kind: str  # once | rrule | cron
    start_at: datetime  # aware
    rule: str | None = None
    until: datetime | None = None
    timezone: str = field(default_factory=zone_name)

    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise TimingError(f"timezone: unknown time zone {self.timezone!r}",
                              "Múi giờ không hợp lệ.") from None


def validate(timing: Timing) -> None:
    """Raise TimingError naming the problem (parse errors, until before start, …)."""
    if timing.start_at.tzinfo is None:
        raise TimingError("start_at: needs a time zone (e.g. +07:00 or Z)",
                          "Thời điểm bắt đầu cần có múi giờ (ví dụ +07:00).")
    if timing.until is not None and timing.until.tzinfo is None:
        raise TimingError("until: needs a time zone", "Ngày kết thúc cần có múi giờ.")
    if timing.until is not None and timing.until <= timing.start_at:
        raise TimingError("until: must be after start_at",
                          "Ngày kết thúc phải sau thời điểm bắt đầu.")
    timing.zone()
    if timing.kind == "once":
        return
    if not timing.rule or not timing.rule.strip():
        raise TimingError(f"rule: a {timing.kind} schedule needs a rule",
                          "Lịch lặp lại cần có quy tắc lặp.")
    next(iter(_expand(timing, timing.start_at)), None)


def occurrences(timing: Timing, start: datetime, end: datetime) -> list[datetime]:
    """Occurrences in [start, end), as aware UTC datetimes, in order."""
    if timing.kind == "once":
        return [timing.start_at.astimezone(UTC)] if start <= timing.start_at < end else []
    result = []
    for occ in islice(_expand(timing, start), MAX_OCCURRENCES):
        if occ >= end:
            break
        result.append(occ)
    return result


def _expand(timing: Timing, after: datetime) -> Iterator[datetime]:
    tz = timing.zone()
    first = max(after, timing.start_at)
    until = timing.until
    if timing.kind == "rrule":
        it = _rrule_iter(timing, tz, first)
    elif timing.kind == "cron":
        it = _cron_iter(timing, tz, first)
    else:
        raise TimingError(f"kind: unknown timing kind {timing.kind!r} (once, rrule or cron)",
                          "Kiểu lịch không hợp lệ: một lần, lặp lại hoặc cron.")
    for occ in it:
        if until is not None and occ > until:
            return
        yield occ


def _rrule_iter(timing: Timing, tz: ZoneInfo, first: datetime) -> Iterator[datetime]:
    dtstart = timing.start_at.astimezone(tz).replace(tzinfo=None)
    text = timing.rule.strip() if timing.rule else ""
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    try:
        rule = rrulestr(text, dtstart=dtstart, ignoretz=True)
    except (ValueError, TypeError, KeyError) as exc:
        raise TimingError(f"rule: not a valid RFC 5545 RRULE: {exc}",
                          "Quy tắc lặp lại không hợp lệ.") from None
    local_first = first.astimezone(tz).replace(tzinfo=None)
    occ = rule.after(local_first, inc=True)
    while occ is not None:
        yield occ.replace(tzinfo=tz).astimezone(UTC)
        occ = rule.after(occ, inc=False)


def _cron_iter(timing: Timing, tz: ZoneInfo, first: datetime) -> Iterator[datetime]:
    expr = (timing.rule or "").strip()
    if len(expr.split()) != 5:
        raise TimingError("rule: a cron expression has 5 fields: minute hour day month weekday",
                          "Biểu thức cron cần 5 phần: phút giờ ngày tháng thứ.")
    try:
        it = croniter(expr, first.astimezone(tz) - _TICK)
    except (CroniterBadCronError, CroniterBadDateError, ValueError, KeyError) as exc:
        raise TimingError(f"rule: not a valid cron expression: {exc}",
                          "Biểu thức cron không hợp lệ.") from None
    while True:
        try:
            occ = it.get_next(datetime)
        except (CroniterBadDateError, StopIteration):
            return
        yield occ.astimezone(UTC)
