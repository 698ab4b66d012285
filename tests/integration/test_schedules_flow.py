"""Schedules and delivery against a real broker and real agents (issue: plans per node,
TT39 priorities, approval, quiet hours, outages, restarts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import make_user, wait_for

pytestmark = pytest.mark.slow
VN = ZoneInfo("Asia/Ho_Chi_Minh")
SHORT = "Thông báo ngắn."
LONG = ("Thông báo của UBND xã về lịch tiêm chủng mở rộng cho trẻ em dưới năm tuổi. "
        "Đề nghị các gia đình đưa trẻ đến trạm y tế xã đúng giờ, mang theo sổ tiêm chủng. ") * 2


def hhmm(delta_h: float) -> str:
    return (datetime.now(VN) + timedelta(hours=delta_h)).strftime("%H:%M")


def set_quiet(client, zone: str, start: str, end: str) -> None:  # type: ignore[no-untyped-def]
    r = client.put("/api/zones", json={"commune": "xa-demo", "code": zone,
                                       "quiet_start": start, "quiet_end": end})
    assert r.status_code == 200, r.text


def quiet_elsewhere(client) -> None:  # type: ignore[no-untyped-def]
    """Quiet hours that do not cover the test's run, whatever time CI runs it."""
    for zone in ("thon-1", "thon-2"):
        set_quiet(client, zone, hhmm(3), hhmm(4))


def plan_ids(agent) -> set[str]:  # type: ignore[no-untyped-def]
    plan = agent.store.load_plan()
    return {i.id for i in plan.items} if plan else set()


def in_future(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def announce(client, text: str, **extra) -> dict:  # type: ignore[no-untyped-def]
    r = client.post("/api/announcements", json={"text": text, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def schedule(client, announcement_id: int, start_in: float, headers=None,  # type: ignore[no-untyped-def]
             **extra):
    body = {"announcement_id": announcement_id, "targets": extra.pop("targets", {"all": True}),
            "timing": {"kind": "once", "start_at": in_future(start_in)}, **extra}
    return client.post("/api/schedules", json=body, headers=headers or {})


def events(client, node: str, item: str | None = None) -> list[str]:  # type: ignore[no-untyped-def]
    params = {"node": node, **({"item": item} if item else {})}
    return [e["event"] for e in client.get("/api/log", params=params).json()]


def test_approval_workflow_decides_what_reaches_the_plans(controller, start_node):
    quiet_elsewhere(controller)
    staff, leader = make_user(controller, "bientap", "staff"), make_user(controller, "lanhdao",
                                                                          "leader")
    node = start_node("node-1")
    r = controller.post("/api/announcements", json={"text": SHORT}, headers=staff)
    a = r.json()
    assert a["status"] == "draft"
    r = schedule(controller, a["id"], 120, headers=staff, targets={"nodes": ["node-1"]})
    assert r.status_code == 201, r.text
    item = f"s{r.json()['id']}-"
    assert not any(i.startswith(item) for i in plan_ids(node))  # a draft never plays

    assert controller.post(f"/api/announcements/{a['id']}/submit", json={},
                           headers=staff).json()["status"] == "submitted"
    r = controller.post(f"/api/announcements/{a['id']}/approve", json={}, headers=staff)
    assert r.status_code == 403
    r = controller.post(f"/api/announcements/{a['id']}/approve", json={"note": "đồng ý"},
                        headers=leader)
    assert r.json()["status"] == "scheduled"
    wait_for(lambda: any(i.startswith(item) for i in plan_ids(node)), 10,
             what="the approved item in node-1's plan")

    r = controller.patch(f"/api/announcements/{a['id']}", json={"text": "Nội dung đã sửa."},
                         headers=staff)
    assert r.json()["status"] == "submitted"  # back in the leaders' queue
    wait_for(lambda: not any(i.startswith(item) for i in plan_ids(node)), 10,
             what="the edited item to leave the plan until approved again")
    history = [(h["actor"], h["action"], [st["action"] for st in h["detail"].get("steps", [])])
               for h in r.json()["history"]]
    assert history[:1] == [("bientap", "create", [])]
    assert ("lanhdao", "approve", []) in history
    assert ("bientap", "edit", ["back_for_approval"]) in history
    r = controller.post(f"/api/announcements/{a['id']}/reject", json={"note": " "},
                        headers=leader)
    assert r.status_code == 422 and r.json()["code"] == "reason_required"
    r = controller.post(f"/api/announcements/{a['id']}/approve", json={}, headers=leader)
    assert r.json()["status"] == "scheduled"
    wait_for(lambda: any(i.startswith(item) for i in plan_ids(node)), 10,
             what="the item approved again back in node-1's plan")


def test_clashes_are_refused_unless_priorities_resolve_them(controller):
    quiet_elsewhere(controller)
    first = announce(controller, LONG, start_at=in_future(300), priority="ordinary")
    clash = announce(controller, SHORT)
    r = schedule(controller, clash["id"], 305, priority="ordinary")
    assert r.status_code == 409
    conflicts = r.json()["detail"]["conflicts"]
    assert r.json()["code"] == "schedule_clash"
    assert r.json()["message"].startswith("Trùng giờ với bản tin khác")
    assert conflicts[0]["announcement_id"] == first["id"] and "node-1" in conflicts[0]["nodes"]
    assert schedule(controller, clash["id"], 305, priority="priority").status_code == 201
    other = announce(controller, SHORT)
    assert schedule(controller, other["id"], 306, priority="priority").status_code == 409
    r = schedule(controller, other["id"], 306, priority="priority", sequence=2)
    assert r.status_code == 409  # the other priority item has no order chosen yet
    r = schedule(controller, other["id"], 306, priority="ordinary",
                 targets={"nodes": ["node-3"]})
    assert r.status_code == 409  # node-3 is also taken by the first (all nodes)
    r = schedule(controller, other["id"], 900, priority="ordinary")
    assert r.status_code == 201
    bad = schedule(controller, other["id"], -60)
    assert bad.status_code == 422 and "past" in bad.json()["detail"]["reason"]
    assert bad.json()["message"] == "Thời điểm phát đã qua: hãy chọn một thời điểm sắp tới."
    r = controller.post("/api/schedules", json={
        "announcement_id": other["id"], "targets": {"zones": ["thon-9"]},
        "timing": {"kind": "rrule", "start_at": in_future(60), "rule": "FREQ=HOURLY"}})
    assert r.status_code == 422 and "thon-9" in r.json()["detail"]["reason"]
    assert r.json()["code"] == "schedule_invalid"
    r = controller.post("/api/schedules", json={
        "announcement_id": other["id"], "targets": {"all": True},
        "timing": {"kind": "cron", "start_at": in_future(60), "rule": "0 25 * * *"}})
    assert r.status_code == 422 and "cron" in r.json()["detail"]["reason"]
    assert r.json()["message"] == "Biểu thức cron không hợp lệ."


def test_cancelling_removes_the_item_from_every_node(controller, start_node):
    quiet_elsewhere(controller)
    agents = [start_node(n) for n in ("node-1", "node-2", "node-3")]
    a = announce(controller, SHORT, start_at=in_future(12))
    sid = a["schedules"][0]["id"]
    wait_for(lambda: all(any(i.startswith(f"s{sid}-") for i in plan_ids(x)) for x in agents),
             10, what="the item in all three plans")
    r = controller.post(f"/api/schedules/{sid}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    wait_for(lambda: not any(any(i.startswith(f"s{sid}-") for i in plan_ids(x))
                             for x in agents), 10, what="the item gone from every plan")
    wait_for(lambda: datetime.now(UTC) > datetime.fromisoformat(a["schedules"][0]["start_at"])
             + timedelta(seconds=3), 20, what="the start time to pass")
    assert all(not list(x.config.audio.file_dir.glob("*.wav")) for x in agents)
    assert {d["status"] for d in controller.get(f"/api/announcements/{a['id']}").json()
            ["deliveries"]} == {"cancelled"}


def test_emergency_preempts_a_playing_item_everywhere_and_stop_ends_it(controller, start_node):
    quiet_elsewhere(controller)
    nodes = ("node-1", "node-2", "node-3")
    for n in nodes:
        start_node(n)
    ordinary = announce(controller, LONG, play_now=True, priority="ordinary")
    item = ordinary["deliveries"][0]["item_id"]
    wait_for(lambda: all("started" in events(controller, n, item) for n in nodes), 30,
             what="the ordinary item playing on all nodes")
    r = controller.post("/api/emergency", json={"text": "Khẩn cấp: bão số 3 đổ bộ.",
                                                "repeat": 3})
    assert r.status_code == 201, r.text
    emergency = r.json()["item_id"]
    wait_for(lambda: all("preempted" in events(controller, n, item) for n in nodes), 20,
             what="the ordinary item preempted on every node")
    wait_for(lambda: all("started" in events(controller, n, emergency) for n in nodes), 20,
             what="the emergency started on every node")
    r = controller.post("/api/emergency/stop", json={})
    assert r.status_code == 200 and r.json()["nodes"] == 3
    wait_for(lambda: all("stopped" in events(controller, n, emergency) for n in nodes), 20,
             what="the stop command to end the emergency")
    staff = make_user(controller, "staff2", "staff")
    assert controller.post("/api/emergency", json={"text": "x"}, headers=staff).status_code == 403


def test_quiet_hours_hold_ordinary_items_but_not_emergencies(controller, start_node):
    set_quiet(controller, "thon-1", hhmm(-1), hhmm(1))
    node = start_node("node-1")
    ordinary = announce(controller, SHORT, play_now=True, priority="ordinary",
                        nodes=["node-1"])
    item = ordinary["deliveries"][0]["item_id"]
    wait_for(lambda: node.store.load_plan() is not None, 10, what="a plan")
    assert item not in plan_ids(node)
    r = controller.post("/api/emergency", json={"text": "Khẩn cấp: lũ quét.",
                                                "targets": {"nodes": ["node-1"]}})
    emergency = r.json()["item_id"]
    wait_for(lambda: "finished" in events(controller, "node-1", emergency), 30,
             what="the emergency to play in quiet hours")
    assert events(controller, "node-1", item) == []


def test_node_offline_across_a_plan_change_plays_the_changed_item_on_time(controller,
                                                                          start_node):
    quiet_elsewhere(controller)
    start_node("node-1")
    away = start_node("node-2")
    old = announce(controller, SHORT, start_at=in_future(30), nodes=["node-1", "node-2"])
    wait_for(lambda: any(i.startswith("s") for i in plan_ids(away)), 10, what="node-2's plan")
    away.stop(graceful=False)  # the 4G link drops
    controller.post(f"/api/schedules/{old['schedules'][0]['id']}/cancel")
    new = announce(controller, "Lịch họp đã đổi.", start_at=in_future(14),
                   nodes=["node-1", "node-2"])
    back = start_node("node-2")  # same store, same session: reconciles on reconnect
    new_item = new["deliveries"][0]["item_id"]
    wait_for(lambda: "finished" in events(controller, "node-2", new_item), 40,
             what="node-2 to play the changed item")
    d = next(d for d in controller.get(f"/api/announcements/{new['id']}").json()["deliveries"]
             if d["node_id"] == "node-2")
    assert abs(d["start_offset_ms"]) < 500
    assert events(controller, "node-2", old["deliveries"][0]["item_id"]) == []
    assert len(list(back.config.audio.file_dir.glob("*.wav"))) == 1


def test_node_offline_at_play_time_plays_from_cache_and_reports_later(controller, start_node,
                                                                      broker_process):
    quiet_elsewhere(controller)
    node = start_node("node-1")
    a = announce(controller, SHORT, start_at=in_future(10), nodes=["node-1"])
    item = a["deliveries"][0]["item_id"]
    wait_for(lambda: item in plan_ids(node) and node.cache.count() > 0, 10,
             what="plan and media on the node")
    broker_process.stop()  # every link is down at play time
    wait_for(lambda: list(node.config.audio.file_dir.glob("*.wav")), 25,
             what="the node to play from its own cache")
    wait_for(lambda: node.store.pending_count() >= 1, 15, what="reports kept in the outbox")
    broker_process.start()
    wait_for(lambda: "finished" in events(controller, "node-1", item), 40,
             what="the reports to arrive after the link returns")
    assert events(controller, "node-1", item).count("finished") == 1
    wait_for(lambda: node.store.pending_count() == 0, 15, what="the outbox to empty")


def test_restarts_of_controller_and_node_lose_no_schedule(controller_settings, start_node):
    from fastapi.testclient import TestClient

    from controller.app import create_app
    from tests.conftest import ADMIN_PASSWORD, login

    def client() -> TestClient:
        c = TestClient(create_app(controller_settings))
        c.__enter__()
        c.headers["Authorization"] = f"Bearer {login(c, 'admin', ADMIN_PASSWORD)}"
        return c

    first = client()
    quiet_elsewhere(first)
    a = announce(first, SHORT, start_at=in_future(25), nodes=["node-1"])
    item = a["deliveries"][0]["item_id"]
    node = start_node("node-1")
    wait_for(lambda: item in plan_ids(node), 10, what="the plan")
    first.__exit__(None, None, None)  # the controller goes down

    node.stop()  # and the node restarts while it is down
    node = start_node("node-1")
    assert item in plan_ids(node)  # from its own store, before any message
    second = client()
    try:
        assert [s["id"] for s in second.get("/api/schedules").json()] == [
            a["schedules"][0]["id"]]
        wait_for(lambda: "finished" in events(second, "node-1", item), 40,
                 what="the item to play after both restarts")
    finally:
        second.__exit__(None, None, None)
