"""Every page, as every role, at desktop and phone sizes, on a station with something on
it (a node playing, announcements in every state, schedules, alerts, plays, accounts,
audit records): no English outside a short allow-list, no id-shaped string (hashes, uuids,
``node-3``-like slugs, item ids), no raw error.

The pages are read from the app's own routes, so a new page is walked without anyone
adding it here. What a page says to people is its visible text plus the words a browser
shows from attributes (placeholders, tooltips, image descriptions, the tab title). A
username is what one types to sign in, not prose: pages mark it ``class="login-name"``.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import wait_for
from tests.web.conftest import DESKTOP, PHONE, login

ROLES = ("admin", "leader", "staff", "officer")
ALLOWED_WORDS = {
    "camera", "loa", "email", "online", "offline", "wifi", "excel", "xlsx", "csv", "json",
    "api", "mqtt", "swagger", "redoc", "google", "espeak", "piper", "vneid", "zalo", "ok",
    "mp3", "wav", "opus", "ogg", "db", "hz", "km", "ms", "kbps", "gps", "cron", "tts",
    "internet", "http", "https",
}
"""Product and format names, units: the words Vietnamese pages use as they are."""
SYLLABLE = re.compile(r"^(ngh|ng|nh|ch|gh|gi|kh|ph|th|tr|qu|[bcdghklmnprstvx])?"
                      r"[aeiouy]{1,3}(ch|nh|ng|[cmnpt])?$")
"""A Vietnamese syllable written without its marks (``thon``, ``xa``, ``tin``): an ASCII
word that is none is English (or another foreign word) on a Vietnamese page."""
WORD = re.compile(r"[A-Za-zÀ-ỹĐđ]+")
ID_SHAPES = {
    "hex hash": re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b"),
    "uuid": re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"),
    "slug with a number": re.compile(r"\b[a-z]+(?:-[a-z0-9]+)*-[a-z]*\d[a-z0-9]*\b"),
    "item id": re.compile(r"\bs\d+(?:[-@]\d+)?\b"),
    "numbered record": re.compile(r"#\d+"),
}
RAW_ERRORS = ("Traceback", "Internal Server Error", '"detail"', "HTTPSConnectionPool",
              "/tmp/", "Exception", "Error:", "None", "undefined", "NaN", "[object")

VISIBLE_WORDS = """() => {
  const skip = (el) => el.closest('.login-name, template, script, style, [hidden]');
  const out = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (skip(el)) continue;
    if (el.getClientRects().length || el.closest('select option')) out.push(n.textContent);
  }
  for (const el of document.querySelectorAll('[placeholder], [title], [alt], [aria-label]')) {
    if (skip(el)) continue;
    for (const a of ['placeholder', 'title', 'alt', 'aria-label']) {
      if (el.hasAttribute(a)) out.push(el.getAttribute(a));
    }
  }
  for (const el of document.querySelectorAll('svg title')) if (!skip(el)) out.push(el.textContent);
  return out.join('\\n');
}"""


PRODUCTS = ("espeak-ng",)
"""Names with a hyphen, taken out before the words are split."""


def problems_in(text: str) -> list[str]:
    found = []
    for name in PRODUCTS:
        text = text.replace(name, " ")
    for word in WORD.findall(text):
        if not word.isascii() or (word.isupper() and len(word) <= 6):
            continue  # Vietnamese letters, or an abbreviation (UBND, HTX)
        lower = word.lower()
        if lower not in ALLOWED_WORDS and not SYLLABLE.match(lower):
            found.append(f"English word {word!r}")
    for name, shape in ID_SHAPES.items():
        found += [f"{name} {m!r}" for m in shape.findall(text)]
    found += [f"raw error {e!r}" for e in RAW_ERRORS if e in text]
    return found


def test_the_checker_finds_what_it_should():
    """The walker's own checks: each problem from the issue is found, Vietnamese is not."""
    for bad in ("test tone", "quiet hours", "after 16.3 s", "(acknowledged)",
                "50a52d99c3", "s1 Chào mừng", "node-3", "thon-1", "reminder-cong-chinh-a0a8",
                "without_helmet 0.67", "Lịch #12", "HTTPSConnectionPool(host=…)",
                str(uuid.uuid4())):
        assert problems_in(bad), bad
    for good in ("Thôn 2 – Cổng trường", "Đã tiếp nhận lúc 08:15 02/12/2026", "UBND xã",
                 "Tải ảnh làm bằng chứng", "camera cổng chính", "Lượt phát mỗi ngày",
                 "Thu gom rác sáng mai", "Tiếng thử loa", "T2, T6 lúc 06:30"):
        assert not problems_in(good), (good, problems_in(good))


FILES = ("/audio/",)
"""Routes that answer with a file, not a page."""


def page_paths(app: Any, ids: dict[str, Any]) -> list[str]:
    """Every HTML page the app serves, read from the app as the role matrix reads it; a
    path's ``{…}`` is filled from the seeded station (a new kind of id fails here, so
    whoever adds such a page gives the walker one)."""
    from tests.test_role_matrix import app_routes, is_page

    return sorted({path.format(**ids) for method, path, _ in app_routes(app)
                   if method == "GET" and is_page(path) and not path.startswith(FILES)
                   and path not in ("/", "/login")})


def seed_station(server: Any, start_node: Any) -> dict[str, Any]:
    """A station in use: a node online (playing its plan), announcements in every state,
    schedules, camera alerts handled and not, plays in the log, accounts, audit records,
    recordings of a live session and of a relay."""
    import base64

    import cv2

    from controller.domain import Targets
    from controller.models import LiveBroadcast
    from controller.services import alerts, live, playback, relay, stats
    from mqtt_contract import Alert, Box, LiveSource, PlaybackReport
    from tests.live.recordings import recorded_session

    agent = start_node("node-1")
    wait_for(lambda: agent.store.load_plan() is not None, 15, what="node-1's plan")
    with httpx.Client(base_url=server.base_url, verify=False, timeout=30) as api:
        def as_(role: str) -> dict[str, str]:
            r = api.post("/api/auth/token", data={"username": role,
                                                  "password": server.passwords[role]})
            assert r.status_code == 200, r.text
            return {"Authorization": f"Bearer {r.json()['access_token']}"}

        admin, staff, leader, officer = (as_(r) for r in ("admin", "staff", "leader",
                                                          "officer"))

        def ok(r: httpx.Response) -> dict:
            assert r.status_code < 300, r.text
            return r.json() if r.content else {}

        ok(api.put("/api/zones", headers=staff, json={
            "commune": "xa-demo", "code": "thon-1", "name": "Thôn Đông", "quiet_start": "22:00",
            "quiet_end": "05:30"}))
        ok(api.put("/api/groups", headers=staff, json={"name": "gan-cho",
                                                       "node_ids": ["node-1", "node-2"]}))
        ok(api.post("/api/calendar", headers=staff, json={"day": "2030-02-03",
                                                          "name": "Tết Nguyên đán"}))
        ok(api.put("/api/lexicon", headers=staff, json={"term": "HTX",
                                                        "reading": "hợp tác xã"}))
        def submitted(title: str, text: str) -> dict:
            made = ok(api.post("/api/announcements", headers=staff, json={
                "title": title, "text": text, "engine": "espeak-ng"}))
            ok(api.post(f"/api/announcements/{made['id']}/submit", headers=staff, json={}))
            return made

        later = (datetime.now(UTC) + timedelta(hours=20)).isoformat()
        approved = submitted("Họp thôn", "Mời bà con họp thôn tối nay.")
        ok(api.post(f"/api/announcements/{approved['id']}/approve", headers=leader,
                    json={"note": "Được"}))
        schedule = ok(api.post("/api/schedules", headers=staff, json={
            "announcement_id": approved["id"], "targets": {"zones": ["thon-1"]},
            "timing": {"kind": "once", "start_at": later}}))
        rejected = submitted("Tiêm phòng", "Tiêm phòng cho trẻ em.")
        ok(api.post(f"/api/announcements/{rejected['id']}/reject", headers=leader,
                    json={"note": "Ghi rõ giờ"}))
        submitted("Thu gom rác", "Thu gom rác sáng mai.")
        ok(api.post("/api/announcements", headers=staff, json={
            "text": "Bản nháp chưa có tiêu đề.", "engine": "espeak-ng"}))
        ok(api.post("/api/nodes/node-1/commands", headers=staff, json={"kind": "volume",
                                                                       "volume": 70}))
        ok(api.post("/api/tokens", headers=admin, json={"name": "Bảng tin điện tử",
                                                        "username": "staff"}))
        station = ok(api.post("/api/stream-sources", headers=admin, json={
            "name": "Đài tỉnh", "url": "http://127.0.0.1:9/dai-tinh.mp3"}))
        ok(api.post("/api/relay-slots", headers=staff, json={
            "source_id": station["id"], "targets": {"zones": ["thon-1"]}, "duration_s": 1800,
            "title": "Thời sự sáng", "timing": {"kind": "rrule", "rule": "FREQ=DAILY",
                                                "start_at": later, "times": ["06:00"]}}))

        frame = np.full((240, 320, 3), 90, np.uint8)
        jpeg = base64.b64encode(cv2.imencode(".jpg", frame)[1].tobytes()).decode()
        ids = []
        with server.runtime.db.session() as s:
            for node, kind in (("node-1", "no_helmet"), ("node-3", "dumping"),
                               ("node-2", "no_helmet")):
                alert = Alert(id=uuid.uuid4().hex, node=node, camera="cong-chinh", kind=kind,
                              at=datetime.now(UTC), confidence=0.8, snapshot_jpeg_b64=jpeg,
                              boxes=[Box(x1=10, y1=10, x2=90, y2=200, label="without_helmet",
                                         confidence=0.8)])
                assert alerts.record_alert(s, "xa-demo", alert, server.runtime.media)
                ids.append(alert.id)
            now = datetime.now(UTC)
            for i, event in enumerate(("finished", "preempted", "failed", "skipped")):
                at = now - timedelta(minutes=30 + i)
                playback.record_report(s, "xa-demo", PlaybackReport(
                    node="node-1", item_id=f"s{schedule['id']}-{int(at.timestamp())}",
                    event=event, planned_at=at, actual_at=at, duration_s=42.5,
                    detail="after 16.3 s" if event == "preempted" else ""))
                playback.record_report(s, "xa-demo", PlaybackReport(
                    node="node-2", item_id="reminder-cong-chinh-a0a8", event="finished",
                    planned_at=at, actual_at=at, duration_s=4))
            stats.record_online(s, 30, now=now - timedelta(hours=3))
            relay.note_source(s, station["id"], "source ended: 127.0.0.1:9 Connection refused")
        ok(api.post(f"/api/alerts/{ids[0]}/acknowledge", headers=officer,
                    json={"note": "Đang tới"}))
        ok(api.post(f"/api/alerts/{ids[1]}/resolve", headers=officer, json={"note": "Đã dọn"}))
        # recordings of a live session and of a relay (the compose page lists them)
        recorded = recorded_session(server.runtime, Path(tempfile.mkdtemp()),
                                    title="Họp dân thôn Đông", actor="staff", nodes=("node-2",))
        with server.runtime.db.session() as s:
            relayed = LiveBroadcast(id=uuid.uuid4().hex, title="", source=LiveSource.relay,
                                    targets=Targets.of(nodes=["node-2"]), started_by="relay",
                                    commune="xa-demo", ended_at=datetime.now(UTC),
                                    stream_source_id=station["id"])
            s.add(relayed)
            s.flush()
            live.keep_recording(s, relayed.id, recorded.recording_sha256, "ogg", 65.0, 100)
        # an emergency on the air while the pages are walked (what plays, by title)
        ok(api.post("/api/emergency", headers=leader, json={
            "title": "Báo bão", "text": "Bão số ba sắp đổ bộ, bà con chằng chống nhà cửa.",
            "engine": "espeak-ng", "targets": {"nodes": ["node-1"]}, "repeat": 20}))
    wait_for(lambda: agent.scheduler.now_playing() is not None, 30,
             what="the emergency playing on node-1")
    return {"announcement_id": approved["id"], "node_id": "node-1"}


@pytest.mark.timeout(600)
def test_every_page_as_every_role_speaks_vietnamese_and_names_things(live_server, start_node,
                                                                     new_page):
    ids = seed_station(live_server, start_node)

    def on_the_air() -> str:
        from controller.services import fleet

        with live_server.runtime.db.session() as s:
            [node] = [n for n in fleet.list_nodes(s) if n.node_id == "node-1"]
            return (node.telemetry or {}).get("now_playing") or ""

    wait_for(lambda: on_the_air().startswith("s"), 30, what="telemetry naming the item")
    paths = page_paths(live_server.app, ids)
    assert {"/dashboard", "/alerts", "/admin/users", "/admin/audit",
            "/nodes/node-1/plan"} <= set(paths)
    findings: list[str] = []
    walked = 0
    for size, size_name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        anonymous = new_page(size)
        anonymous.goto(live_server.url("/login"))
        findings += [f"/login ({size_name}): {p}"
                     for p in problems_in(anonymous.evaluate(VISIBLE_WORDS))]
        for role in ROLES:
            page = new_page(size)
            login(page, live_server, role)
            for path in paths:
                response = page.goto(live_server.url(path))
                assert response is not None and response.status in (200, 403), (
                    f"{path} as {role}: {response.status if response else 'no answer'}")
                page.wait_for_load_state("load")
                walked += 1
                findings += [f"{path} as {role} ({size_name}): {p}"
                             for p in problems_in(page.evaluate(VISIBLE_WORDS))]
                width = page.evaluate("() => document.documentElement.scrollWidth")
                if width > size["width"]:
                    findings.append(f"{path} as {role} ({size_name}): {width} px wide")
    leader = new_page()
    login(leader, live_server, "leader", "/nodes")
    assert "Báo bão" in leader.inner_text("#nodes tr[data-node='node-1']"), "what plays, by title"
    for size, size_name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        composer = new_page(size)  # the recordings the compose page fetches, once listed
        login(composer, live_server, "staff", "/compose")
        composer.locator("#recordings-list li").nth(1).wait_for()
        findings += [f"/compose recordings ({size_name}): {p}"
                     for p in problems_in(composer.evaluate(VISIBLE_WORDS))]
        assert "Đài tỉnh" in composer.inner_text("#recordings-list")
    print(f"\nwalked {walked} pages ({len(paths)} paths × {len(ROLES)} roles × 2 sizes)")
    unique = sorted(set(findings))
    assert not unique, f"{len(unique)} findings:\n" + "\n".join(unique)
