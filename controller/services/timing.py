"""When a schedule plays: once, an RFC 5545 rule, or a cron expression, in its time zone.

Rules are expanded in the schedule's own zone (by default the commune's, ``LOAXA_TIMEZONE``)
so "every weekday at 06:00" means 06:00 on the commune's wall clock, then converted to UTC
for plans.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from itertools import islice
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter
from dateutil.rrule import rrulestr

from controller.domain import DomainError
from controller.localtime import zone_name

MAX_OCCURRENCES = 10_000
MAX_TIMES_OF_DAY = 12
TIME_PARTS = ("BYHOUR", "BYMINUTE", "BYSECOND")
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


def at_times(timing: Timing, times: Sequence[time], now: datetime) -> Timing:
    """One schedule played at several times of day (06:00 and 17:00), as one rule.

    RFC 5545 crosses BYHOUR with BYMINUTE (06:00 and 17:30 would also give 06:30 and
    17:00), so each time gets its own RRULE line of one rule set (dateutil reads them
    all). ``once`` with several times becomes one line per time with COUNT=1 on
    ``start_at``'s local day; each must still be ahead. ``rrule`` keeps its frequency and
    days and takes each time in place of its own BYHOUR/BYMINUTE/BYSECOND.
    """
    if not times:
        return timing
    if timing.kind == "cron":
        raise TimingError("times: not with a cron rule (write the hours in it)",
                          "Lịch cron tự ghi giờ trong biểu thức: không chọn thêm giờ.")
    if len(times) > MAX_TIMES_OF_DAY:
        raise TimingError(f"times: at most {MAX_TIMES_OF_DAY}",
                          f"Tối đa {MAX_TIMES_OF_DAY} giờ phát trong một lịch.")
    tz = timing.zone()
    day = timing.start_at.astimezone(tz).date()
    wanted = sorted({t.replace(second=0, microsecond=0, tzinfo=None) for t in times})
    if timing.kind == "once":
        starts = [datetime.combine(day, t, tz) for t in wanted]
        if past := [s for s in starts if s < now]:
            raise TimingError("times: in the past",
                              f"Giờ phát {past[0]:%H:%M} ngày {past[0]:%d/%m} đã qua: "
                              "hãy chọn giờ sắp tới.")
        if len(starts) == 1:
            return replace(timing, start_at=starts[0])
        base, midnight = "FREQ=DAILY;COUNT=1", datetime.combine(day, time(0), tz)
    else:
        text = (timing.rule or "").strip()
        text = text[6:] if text.upper().startswith("RRULE:") else text
        if "\n" in text:
            raise TimingError("rule: one rule line when times are given",
                              "Quy tắc lặp lại không hợp lệ.")
        base = ";".join(p for p in text.split(";")
                        if p and p.split("=", 1)[0].strip().upper() not in TIME_PARTS)
        midnight = timing.start_at
    rule = "\n".join(f"RRULE:{base};BYHOUR={t.hour};BYMINUTE={t.minute};BYSECOND=0"
                     for t in wanted)
    return replace(timing, kind="rrule", start_at=midnight, rule=rule)


def times_of_day(rule: str | None) -> list[time]:
    """The times of day a rule names (its BYHOUR × BYMINUTE, every line), in order: what
    the pages show ("lúc 06:00, 17:30")."""
    found: set[time] = set()
    for line in (rule or "").upper().splitlines():
        line = line.strip().removeprefix("RRULE:")
        parts = dict(p.split("=", 1) for p in line.split(";") if "=" in p)
        hours, minutes = parts.get("BYHOUR", ""), parts.get("BYMINUTE", "0")
        try:
            found |= {time(int(h), int(m)) for h in hours.split(",") if h
                      for m in minutes.split(",") if m}
        except ValueError:
            continue
    return sorted(found)


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
