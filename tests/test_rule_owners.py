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


def test_a_schedule_is_audited_by_its_service_whichever_route_makes_it(controller):
    """``POST /api/announcements`` with ``start_at`` used to leave no schedule record."""
    from datetime import timedelta

    at = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    later = (datetime.now(UTC) + timedelta(days=4)).isoformat()  # no clash with the first
    a = controller.post("/api/announcements", json={
        "text": "Họp thôn tối nay.", "engine": "espeak-ng", "start_at": at,
        "nodes": ["node-1"]})
    assert a.status_code == 201, a.text
    b = controller.post("/api/announcements", json={"text": "Tiêm phòng.",
                                                    "engine": "espeak-ng"}).json()
    s = controller.post("/api/schedules", json={
        "announcement_id": b["id"], "targets": {"nodes": ["node-1"]},
        "timing": {"kind": "once", "start_at": later}})
    assert s.status_code == 201, s.text
    assert controller.post(f"/api/schedules/{s.json()['id']}/cancel").status_code == 200
    # one record per request; the steps of a request are listed in its record
    for aid, wanted in ((a.json()["id"], [["create", "approve", "schedule"]]),
                        (b["id"], [["create"], ["schedule"], ["cancel_schedule"]])):
        history = controller.get(f"/api/announcements/{aid}").json()["history"]
        assert [[h["action"], *(st["action"] for st in h["detail"].get("steps", []))]
                for h in history] == wanted
        assert {h["actor"] for h in history} == {"admin"}
