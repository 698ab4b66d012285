"""Recurring rules: RFC 5545 and cron, in the commune's time zone, across month ends."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from controller.services.timing import Timing, TimingError, occurrences, validate

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def local(occs: list[datetime]) -> list[str]:
    return [o.astimezone(VN).strftime("%a %Y-%m-%d %H:%M") for o in occs]


def test_weekday_mornings_and_evenings_cross_a_month_end() -> None:
    t = Timing("rrule", datetime(2026, 1, 1, 6, 0, tzinfo=VN),
               "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=6,17;BYMINUTE=0")
    got = local(occurrences(t, datetime(2026, 1, 30, tzinfo=VN), datetime(2026, 2, 3, tzinfo=VN)))
    assert got == ["Fri 2026-01-30 06:00", "Fri 2026-01-30 17:00",
                   "Mon 2026-02-02 06:00", "Mon 2026-02-02 17:00"]


def test_monthly_on_the_31st_skips_short_months() -> None:
    t = Timing("rrule", datetime(2026, 1, 31, 7, 0, tzinfo=VN), "FREQ=MONTHLY;BYMONTHDAY=31")
    got = local(occurrences(t, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)))
    assert got == ["Sat 2026-01-31 07:00", "Tue 2026-03-31 07:00", "Sun 2026-05-31 07:00"]


def test_last_day_of_each_month_including_a_leap_february() -> None:
    t = Timing("rrule", datetime(2028, 1, 1, 17, 0, tzinfo=VN), "FREQ=MONTHLY;BYMONTHDAY=-1")
    got = local(occurrences(t, datetime(2028, 1, 1, tzinfo=UTC), datetime(2028, 4, 1, tzinfo=UTC)))
    assert got == ["Mon 2028-01-31 17:00", "Tue 2028-02-29 17:00", "Fri 2028-03-31 17:00"]


def test_cron_every_hour_seven_to_eleven_on_weekdays_with_until() -> None:
    t = Timing("cron", datetime(2026, 1, 30, 0, 0, tzinfo=VN), "0 7-11 * * 1-5",
               until=datetime(2026, 2, 2, 9, 30, tzinfo=VN))
    got = local(occurrences(t, datetime(2026, 1, 29, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)))
    assert got == ["Fri 2026-01-30 07:00", "Fri 2026-01-30 08:00", "Fri 2026-01-30 09:00",
                   "Fri 2026-01-30 10:00", "Fri 2026-01-30 11:00", "Mon 2026-02-02 07:00",
                   "Mon 2026-02-02 08:00", "Mon 2026-02-02 09:00"]


def test_cron_on_the_last_days_of_february_and_march() -> None:
    t = Timing("cron", datetime(2026, 2, 1, tzinfo=VN), "30 6 28-31 * *")
    got = local(occurrences(t, datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)))
    assert got == ["Sat 2026-02-28 06:30", "Sat 2026-03-28 06:30", "Sun 2026-03-29 06:30",
                   "Mon 2026-03-30 06:30", "Tue 2026-03-31 06:30"]


def test_once() -> None:
    at = datetime(2026, 5, 1, 8, 0, tzinfo=VN)
    assert occurrences(Timing("once", at), at, datetime(2026, 5, 2, tzinfo=VN)) == [at]


@pytest.mark.parametrize("timing,problem", [
    (Timing("rrule", datetime(2026, 1, 1, tzinfo=UTC), "FREQ=SOMETIMES"), "RRULE"),
    (Timing("rrule", datetime(2026, 1, 1, tzinfo=UTC), ""), "needs a rule"),
    (Timing("cron", datetime(2026, 1, 1, tzinfo=UTC), "61 * * * *"), "cron"),
    (Timing("cron", datetime(2026, 1, 1, tzinfo=UTC), "* * *"), "5 fields"),
    (Timing("once", datetime(2026, 1, 1)), "time zone"),
    (Timing("once", datetime(2026, 1, 1, tzinfo=UTC), timezone="Nowhere/X"), "time zone"),
    (Timing("rrule", datetime(2026, 2, 1, tzinfo=UTC), "FREQ=DAILY",
            until=datetime(2026, 1, 1, tzinfo=UTC)), "until"),
])
def test_invalid_rules_name_the_problem(timing: Timing, problem: str) -> None:
    with pytest.raises(TimingError, match=problem):
        validate(timing)


# ----------------------------------------------------------- several times of day


def test_several_times_of_day_are_one_rule_set_not_a_cross_product() -> None:
    """06:00 and 17:30 weekly: BYHOUR=6,17;BYMINUTE=0,30 would also give 06:30 and 17:00."""
    from datetime import time

    from controller.services.timing import at_times, times_of_day

    base = Timing("rrule", datetime(2026, 1, 1, tzinfo=VN),
                  "FREQ=WEEKLY;BYDAY=MO,FR;BYHOUR=9;BYMINUTE=15", timezone="Asia/Ho_Chi_Minh")
    t = at_times(base, [time(17, 30), time(6, 0), time(6, 0)], datetime(2026, 1, 1, tzinfo=UTC))
    validate(t)
    got = local(occurrences(t, datetime(2026, 1, 1, tzinfo=VN), datetime(2026, 1, 6, tzinfo=VN)))
    assert got == ["Fri 2026-01-02 06:00", "Fri 2026-01-02 17:30",
                   "Mon 2026-01-05 06:00", "Mon 2026-01-05 17:30"]
    assert times_of_day(t.rule) == [time(6, 0), time(17, 30)]


def test_once_at_several_times_plays_each_once_and_refuses_a_past_one() -> None:
    from datetime import time

    from controller.services.timing import at_times

    once = Timing("once", datetime(2026, 3, 2, 8, 0, tzinfo=VN), timezone="Asia/Ho_Chi_Minh")
    t = at_times(once, [time(6, 0), time(17, 0)], datetime(2026, 3, 1, tzinfo=UTC))
    got = local(occurrences(t, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)))
    assert got == ["Mon 2026-03-02 06:00", "Mon 2026-03-02 17:00"]
    one = at_times(once, [time(17, 0)], datetime(2026, 3, 1, tzinfo=UTC))
    assert (one.kind, local([one.start_at])) == ("once", ["Mon 2026-03-02 17:00"])
    with pytest.raises(TimingError) as refused:
        at_times(once, [time(6, 0), time(17, 0)], datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    assert refused.value.message.startswith("Giờ phát 06:00 ngày 02/03 đã qua")
    with pytest.raises(TimingError):
        at_times(Timing("cron", once.start_at, "0 6 * * *"), [time(6, 0)], once.start_at)
