"""Staff and leaders in a browser: compose from a template, listen to the preview, save,
schedule (once and weekly), send for approval; a leader listens and approves; nodes take
it into their plans. Test tone and volume from the nodes page; the broadcast log and its
CSV report; the dashboard with real agents online. Screenshots for the README."""

from __future__ import annotations

import csv
import io
import wave
from datetime import UTC, datetime, timedelta

import httpx

from controller.localtime import zone
from tests.conftest import login as api_login
from tests.conftest import wait_for
from tests.web.conftest import login, screenshot


def plan_items(agent) -> list[str]:  # type: ignore[no-untyped-def]
    plan = agent.store.load_plan()
    return [i.id for i in plan.items] if plan else []


def tone_wav(seconds: float, rate: int = 16000) -> bytes:
    """A short recording to attach, made here (440 Hz, mono, 16-bit)."""
    import numpy as np

    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return out.getvalue()


def all_online(server) -> bool:  # type: ignore[no-untyped-def]
    from controller.services import fleet

    with server.runtime.db.session() as s:
        nodes = fleet.list_nodes(s)
        return len(nodes) == 3 and all(n.online and n.telemetry for n in nodes)


def test_compose_preview_schedule_approve_and_monitor(live_server, start_node, new_page):
    agents = {n: start_node(n) for n in ("node-1", "node-2", "node-3")}
    wait_for(lambda: all_online(live_server), 20, what="three nodes online with telemetry")

    # ---- staff: compose from a template, preview, save
    staff = new_page()
    login(staff, live_server, "staff")
    staff.goto(live_server.url("/compose"))
    staff.select_option("#template", "meeting")
    values = {"attendees": "đại diện các hộ gia đình thôn 1", "meeting": "cuộc họp thôn",
              "time": "19h30", "date": "12/4/2026", "place": "Nhà văn hoá thôn 1",
              "agenda": "bình xét hộ nghèo năm 2026"}
    for name, value in values.items():
        staff.fill(f"#tf-{name}", value)
    staff.click("#fill-template")
    wait_for(lambda: "Nhà văn hoá thôn 1" in staff.input_value("#text"), 5,
             what="the template text")
    assert staff.input_value("#title") == "Thông báo họp"
    staff.select_option("#engine", "espeak-ng")
    staff.set_input_files("#recording", files=[{"name": "loi-moi.wav", "mimeType": "audio/wav",
                                                "buffer": tone_wav(2.0)}])
    wait_for(lambda: "Đã tải lên: loi-moi.wav (2.0 giây)" in staff.inner_text("#upload-info"),
             20, what="the recording to upload")
    staff.click("#preview")
    staff.wait_for_selector("#player[data-ready='1']", timeout=60_000)
    duration = wait_for(lambda: staff.evaluate(
        "() => { const p = document.getElementById('player'); "
        "return isFinite(p.duration) && p.duration > 0 ? p.duration : 0; }"), 10,
        what="the preview audio to load in the player")
    assert 5 < float(duration) < 60  # type: ignore[arg-type]
    assert "espeak-ng" in staff.inner_text("#preview-info")
    screenshot(staff, "compose")
    staff.click("#save")
    staff.wait_for_selector("#saved:not([hidden])", timeout=60_000)
    aid = int(staff.get_attribute("#saved-link", "data-id"))

    # ---- schedule it once, later today (or early tomorrow), on node-1 and node-2
    at = (datetime.now(UTC) + timedelta(minutes=10)).astimezone(zone())
    form = staff.locator("#schedule-card form")
    form.locator("[name=date]").fill(at.strftime("%Y-%m-%d"))
    form.locator("[name=time]").fill(at.strftime("%H:%M"))
    form.locator("input[name=target][value=nodes]").check()
    form.locator("input[name=nodes][value=node-1]").check()
    form.locator("input[name=nodes][value=node-2]").check()
    form.locator("button[type=submit]").click()
    staff.wait_for_selector("#after-schedule:not([hidden])")
    staff.click("#submit-approval")
    wait_for(lambda: staff.inner_text("#saved-status") == "Chờ duyệt", 5, what="submitted")

    # ---- and weekly, Monday/Wednesday/Friday 17:00 in village thon-1, from the schedules page
    staff.goto(live_server.url("/schedules"))
    weekly = staff.locator("form[data-schedule-form]")
    weekly.locator("[name=announcement_id]").select_option(str(aid))
    weekly.locator("[name=kind]").select_option("weekly")
    for day in ("MO", "WE", "FR"):
        weekly.locator(f"input[name=byday][value={day}]").check()
    weekly.locator("[name=time]").fill("17:00")
    weekly.locator("input[name=target][value=zones]").check()
    weekly.locator("input[name=zones][value=thon-1]").check()
    weekly.locator("[name=priority]").select_option("ordinary")
    weekly.locator("button[type=submit]").click()
    staff.wait_for_function(
        "() => document.querySelectorAll('#schedule-list tbody tr').length >= 2")
    # next week holds all three weekly slots whatever today is (this week's Monday may
    # be past: the schedule starts now)
    next_monday = at.date() + timedelta(days=7 - at.weekday())
    staff.goto(live_server.url(f"/schedules?week={next_monday.isoformat()}"))
    staff.wait_for_function("() => document.querySelectorAll('#week .slot').length >= 3")
    assert staff.locator("#schedule-list tbody tr").count() == 2
    assert "Hằng tuần T2, T4, T6 lúc 17:00" in staff.inner_text("#schedule-list")
    assert staff.locator("#pending button[data-action=approve]").count() == 0, \
        "staff cannot approve"

    # ---- a leader listens and approves; the nodes get it in their plans
    leader = new_page()
    login(leader, live_server, "leader")
    leader.goto(live_server.url("/schedules"))
    pending = leader.locator(f"#pending [data-announcement='{aid}']")
    assert pending.locator("audio").get_attribute("src") == f"/audio/announcements/{aid}"
    audio = leader.request.get(live_server.url(f"/audio/announcements/{aid}"))
    assert audio.ok and audio.headers["content-type"].startswith("audio/")
    pending.locator("[data-note]").fill("Đồng ý phát")
    pending.locator("button[data-action=approve]").click()
    leader.wait_for_selector("#pending", state="detached")
    assert "Đã lên lịch" in leader.inner_text("#schedule-list")
    with httpx.Client(base_url=live_server.base_url) as client:
        headers = {"Authorization":
                   f"Bearer {api_login(client, 'leader', live_server.passwords['leader'])}"}
        a = client.get(f"/api/announcements/{aid}", headers=headers).json()
    assert a["status"] == "scheduled"
    steps = [h["action"] for h in a["history"] if h["action"] in ("create", "submit", "approve")]
    assert steps == ["create", "submit", "approve"]
    assert any(h["actor"] == "leader" and h["detail"].get("note") == "Đồng ý phát"
               for h in a["history"])
    once = next(s for s in a["schedules"] if s["kind"] == "once")
    wait_for(lambda: any(i.startswith(f"s{once['id']}-") for i in plan_items(agents["node-1"])),
             15, what="node-1's plan to hold the approved item")
    assert not any(i.startswith(f"s{once['id']}-") for i in plan_items(agents["node-3"]))
    screenshot(leader, "schedules")

    # ---- nodes page: test tone on node-2, volume on node-3
    staff.goto(live_server.url("/nodes"))
    assert staff.locator("#nodes td[data-label='Trạng thái'] .badge.online").count() == 3
    sink = agents["node-2"].config.audio.file_dir
    before = set(sink.glob("*.wav"))
    staff.click("tr[data-node=node-2] button[data-op=test_tone]")
    wait_for(lambda: set(sink.glob("*.wav")) - before, 15, what="node-2 to play the test tone")
    row3 = staff.locator("tr[data-node=node-3]")
    row3.locator("[data-volume-input]").fill("65")
    row3.locator("button[data-op=volume]").click()
    wait_for(lambda: agents["node-3"].volume() == 65, 10, what="node-3's new volume")
    row3.locator("[data-result]", has_text="Đã đặt âm lượng 65").wait_for()

    # ---- something plays now (a leader's own announcement goes out at once)
    with httpx.Client(base_url=live_server.base_url, timeout=60) as client:
        r = client.post("/api/announcements", headers=headers, json={
            "title": "Chào buổi sáng", "text": "Đài truyền thanh xã xin kính chào bà con.",
            "engine": "espeak-ng", "play_now": True})
        assert r.status_code == 201, r.text
        now_id = r.json()["id"]

        def finished() -> bool:
            d = client.get(f"/api/announcements/{now_id}", headers=headers).json()
            return d["summary"].get("finished", 0) == 3

        wait_for(finished, 60, what="the three nodes to finish playing")
    wait_for(lambda: staff.request.get(live_server.url("/api/log")).json(), 5,
             what="the log")
    staff.goto(live_server.url("/log"))
    played = staff.locator("#log tr[data-event=finished]", has_text="Chào buổi sáng")
    assert played.count() == 3
    assert "Chào buổi sáng" in staff.inner_text("#report")
    report = staff.request.get(live_server.url(staff.get_attribute("#csv", "href") or ""))
    assert report.ok and report.headers["content-type"].startswith("text/csv")
    text = report.body().decode("utf-8")
    assert text.startswith("\ufeff"), "Excel needs the BOM to read UTF-8"
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert {r["Theo"] for r in rows} == {"Bản tin", "Cụm loa", "Thôn/khu"}
    assert [int(r["Số lần phát"]) for r in rows
            if r["Theo"] == "Bản tin" and r["Tên"] == "Chào buổi sáng"] == [3]
    workbook = staff.request.get(live_server.url(staff.get_attribute("#xlsx", "href") or ""))
    assert workbook.ok and workbook.body()[:2] == b"PK"  # an Office Open XML zip
    screenshot(staff, "log")

    staff.goto(live_server.url("/nodes"))
    screenshot(staff, "nodes")
    staff.goto(live_server.url("/dashboard"))
    assert staff.inner_text("#online-count") == "3 / 3"
    assert staff.locator("svg.map circle.node.online").count() == 3
    screenshot(staff, "dashboard")
