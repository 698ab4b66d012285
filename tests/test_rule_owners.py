"""The rules with one owner each: plan item ids and local-day bounds (controller side)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from controller import localtime
from controller.services.item_ids import item_id, schedule_label, schedule_of


def test_item_ids_round_trip_and_junk_has_no_schedule():
    at = datetime(2026, 3, 1, 6, 30, tzinfo=UTC)
    iid = item_id(42, at)
    assert iid == f"s42-{int(at.timestamp())}"
    assert schedule_of(iid) == 42 and schedule_label(iid) == "s42"
    for junk in ("live-1", "s-1", "sx-12", "s12", "", "s12-abc"):
        assert schedule_of(junk) is None and schedule_label(junk) == junk


def test_local_day_bounds_follow_the_configured_zone():
    try:
        assert localtime.day_bounds(date(2026, 3, 1)) == (
            datetime(2026, 2, 28, 17, tzinfo=UTC), datetime(2026, 3, 1, 17, tzinfo=UTC))
        localtime.configure("Europe/Paris")
        assert localtime.day_bounds(date(2026, 3, 1))[0] == datetime(2026, 2, 28, 23,
                                                                      tzinfo=UTC)
        assert localtime.today(datetime(2026, 3, 1, 23, 30, tzinfo=UTC)) == date(2026, 3, 2)
        with pytest.raises(ValueError):
            localtime.configure("Mars/Olympus")
    finally:
        localtime.configure("Asia/Ho_Chi_Minh")


def test_the_time_zone_is_a_setting(tmp_path):
    from pydantic import ValidationError

    from controller.settings import Settings
    from mqtt_contract import DEFAULT_TIMEZONE

    assert Settings(data_dir=tmp_path).timezone == DEFAULT_TIMEZONE
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, timezone="Nowhere/Town")
