"""Relay slots are scheduled like announcements (issue 11, item 3): the schedule's timing
checks and times of day, its TT39 level with quiet hours and holidays, approval, and
clashes (two relays never share a speaker at once). API-level, no station needed."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from controller.models import Node
from controller.services import relay as relay_service
from tests.conftest import login, make_user

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def at_local(days: int, hh: int, mm: int = 0) -> datetime:
    day = datetime.now(VN).date() + timedelta(days=days)
    return datetime.combine(day, time(hh, mm), VN)


def slot(controller: Any, source: int, start: datetime, targets: dict, *,
         priority: str | None = None, duration_s: float = 1800, headers: dict | None = None,
         **timing: Any) -> Any:
    body: dict = {"source_id": source, "targets": targets, "duration_s": duration_s,
                  "title": "Thời sự", "timing": {"kind": "once", "start_at": start.isoformat(),
                                                 **timing}}
    if priority:
        body["priority"] = priority
    return controller.post("/api/relay-slots", json=body, headers=headers or {})


def station(controller: Any) -> int:
    r = controller.post("/api/stream-sources", json={"name": "VOV1",
                                                     "url": "http://127.0.0.1:9/vov1.mp3"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_a_slot_is_checked_like_a_schedule(controller: Any) -> None:
    source = station(controller)
    past = slot(controller, source, datetime.now(UTC) - timedelta(minutes=5), {"all": True})
    assert past.status_code == 422 and past.json()["code"] == "schedule_invalid", past.text
    assert "đã qua" in past.json()["message"]

    early = at_local(1, 5)  # inside the default quiet hours, 22:00-06:00
    held = slot(controller, source, early, {"nodes": ["node-1"]}, priority="ordinary")
    assert held.status_code == 422 and held.json()["code"] == "relay_refused", held.text
    assert "giờ yên tĩnh" in held.json()["message"] and "22:00–06:00" in held.json()["message"]
    first = slot(controller, source, early, {"nodes": ["node-1"]}, priority="priority")
    assert first.status_code == 201 and first.json()["priority"] == "priority", first.text
    assert slot(controller, source, at_local(1, 7), {"nodes": ["node-1"]},
                priority="ordinary").status_code == 201

    # node-2 shares node-1's zone, not the slot: no clash; the zone includes node-1: clash
    assert slot(controller, source, early + timedelta(minutes=10),
                {"nodes": ["node-2"]}).status_code == 201
    clash = slot(controller, source, early + timedelta(minutes=10), {"zones": ["thon-1"]})
    assert clash.status_code == 409 and clash.json()["code"] == "schedule_clash", clash.text
    conflicts = clash.json()["detail"]["conflicts"]
    assert {c.get("relay_slot_id") for c in conflicts} >= {first.json()["id"]}
    assert "lịch tiếp sóng khác" in clash.json()["message"]
    assert "Thời sự" in clash.json()["message"]
    leader = make_user(controller, "chutich", "leader")
    now = controller.post(f"/api/stream-sources/{source}/relay", headers=leader,
                          json={"targets": {"nodes": ["node-3"]}, "duration_s": 60})
    assert now.status_code == 201 and now.json()["priority"] == "priority", now.text

    assert controller.post(f"/api/relay-slots/{first.json()['id']}/cancel").status_code == 200
    assert slot(controller, source, early + timedelta(minutes=10),
                {"zones": ["thon-1"]}).status_code == 409, "node-2's slot still overlaps"

    # several times of day in one slot, as a schedule takes them
    daily = slot(controller, source, at_local(2, 0), {"nodes": ["node-3"]}, duration_s=600,
                 kind="rrule", rule="FREQ=DAILY", times=["06:30", "18:00"])
    assert daily.status_code == 201, daily.text
    assert "BYHOUR=6" in daily.json()["rule"] and "BYHOUR=18" in daily.json()["rule"]
    staff = make_user(controller, "bientap", "staff")
    waiting = slot(controller, source, at_local(3, 9), {"nodes": ["node-3"]}, headers=staff)
    assert waiting.status_code == 201 and waiting.json()["approved"] is False
    assert slot(controller, source, at_local(3, 9), {"nodes": ["node-3"]},
                priority="emergency").status_code == 422


def test_quiet_hours_and_holidays_hold_the_nodes_of_an_airing(controller: Any) -> None:
    """And a commune's slot narrowed by quiet hours still reaches only its commune (the
    runner's session is the province's, another commune has a thôn 1 too: the slot's
    targets carry its commune, stamped by controller.scope)."""
    source = station(controller)
    with controller.runtime.db.session() as s:
        s.add(Node(commune="xa-khac", node_id="node-9", zones=["thon-1"]))
    r = controller.post("/api/users", json={"username": "lanhdao", "role": "leader",
                                            "password": "lanhdao-password-123",
                                            "commune": "xa-demo"})
    assert r.status_code == 201, r.text
    leader = {"Authorization": "Bearer " + login(controller, "lanhdao",
                                                 "lanhdao-password-123")}
    start = at_local(1, 7)
    ordinary = slot(controller, source, start, {"zones": ["thon-1", "thon-2"]},
                    priority="ordinary", duration_s=600, headers=leader)
    assert ordinary.status_code == 201, ordinary.text
    r = controller.put("/api/zones", json={"commune": "xa-demo", "code": "thon-2",
                                           "name": "Thôn 2", "quiet_start": "06:30",
                                           "quiet_end": "08:00"})
    assert r.status_code == 200, r.text

    def airing(at: datetime) -> list[relay_service.Airing]:
        with controller.runtime.db.session() as s:
            return relay_service.on_air(s, at.astimezone(UTC))

    [on] = airing(start + timedelta(seconds=1))
    assert on.slot_id == ordinary.json()["id"]
    assert sorted(on.targets.nodes) == ["node-1", "node-2"], "thôn 2 is in its quiet hours"
    assert on.targets.communes == ["xa-demo"]
    assert controller.post("/api/calendar", json={
        "day": start.date().isoformat(), "name": "Nghỉ lễ"}).status_code == 201
    assert airing(start + timedelta(seconds=1)) == [], "a holiday holds a relay"
    assert airing(start - timedelta(seconds=1)) == []
