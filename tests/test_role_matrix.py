"""Every route × every role: 401 without a session, 403 for a role that may not, 2xx
(or the route's documented redirect) for one that may, each with a valid request.

The routes are read from the app itself (API routes, the pages, FastAPI's docs), so a new
route that is missing from ``POLICY`` fails this test: whoever adds a route must say who
may call it, and the test then proves the route enforces it.
"""

from __future__ import annotations

import base64
import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from starlette.routing import Mount

from tests.conftest import login

ROLES = ("staff", "leader", "officer", "upstream", "admin")
"""One account of each role (admin last: it is the fixture's own)."""
ANY = frozenset({"staff", "leader", "officer", "admin"})
"""Any person: the system role ``upstream`` reaches only its own routes."""
UPSTREAM = frozenset({"upstream", "admin"})
UPSTREAM_READERS = frozenset({"upstream", "leader", "admin"})
STAFF = frozenset({"staff", "leader", "admin"})
LEADER = frozenset({"leader", "admin"})
OFFICER = frozenset({"officer", "leader", "admin"})
ADMIN = frozenset({"admin"})
PUBLIC = None
PAGE_LOGIN = 303  # a page sends a visitor without a session to the login form


@dataclass
class Req:
    """One request: path parameters, and what goes in the body or query."""

    path: dict[str, Any] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Case:
    allowed: frozenset[str] | None  # None: public
    prepare: Callable[[Ctx, bool], Req] = lambda ctx, real: Req()
    """Builds a valid request; ``real`` is False for callers that will be refused (no need
    to create state for them)."""
    ok: frozenset[int] = frozenset(range(200, 300))
    ends_sessions: bool = False
    """The call ends the caller's session(s) (logout, password change): it gets a fresh
    one, and the role's shared token is renewed afterwards."""


class Ctx:
    """Creates the state requests need, through the admin's API."""

    def __init__(self, client: Any) -> None:
        self.client, self.runtime = client, client.runtime
        self._n = itertools.count(1)
        self.shared: dict[str, Any] = {}

    def n(self) -> int:
        return next(self._n)

    def announcement(self, status: str = "draft") -> int:
        r = self.client.post("/api/announcements", json={
            "text": f"Thông báo số {self.n()}.", "engine": "espeak-ng"})
        assert r.status_code == 201, r.text
        aid = r.json()["id"]
        if status in ("submitted",):
            assert self.client.post(f"/api/announcements/{aid}/submit", json={}
                                    ).status_code == 200
        return aid

    def once(self, name: str, make: Callable[[], Any]) -> Any:
        if name not in self.shared:
            self.shared[name] = make()
        return self.shared[name]

    def schedule(self) -> int:
        at = datetime.now(UTC) + timedelta(days=2, hours=self.n())
        r = self.client.post("/api/schedules", json={
            "announcement_id": self.once("draft", self.announcement),
            "targets": {"nodes": ["node-1"]}, "timing": {"kind": "once",
                                                         "start_at": at.isoformat()}})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def alert(self) -> str:
        from controller.services import alerts
        from mqtt_contract import Alert

        ok, jpeg = cv2.imencode(".jpg", np.zeros((48, 64, 3), np.uint8))
        assert ok
        alert = Alert(id=uuid.uuid4().hex, node="node-1", camera="gate", kind="no_helmet",
                      at=datetime.now(UTC), confidence=0.9,
                      snapshot_jpeg_b64=base64.b64encode(jpeg.tobytes()).decode(),
                      before_jpeg_b64=base64.b64encode(jpeg.tobytes()).decode())
        with self.runtime.db.session() as s:
            assert alerts.record_alert(s, "xa-demo", alert, self.runtime.media)
        return alert.id

    def operation(self) -> str:
        r = self.client.post("/api/operations", json={"kind": "versions", "nodes": ["node-1"],
                                                      "wait_s": 0})
        assert r.status_code == 200, r.text
        return r.json()["id"]

    def holiday(self) -> int:
        r = self.client.post("/api/calendar", json={"day": f"2031-01-{self.n() % 28 + 1:02d}"})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def live(self) -> str:
        r = self.client.post("/api/live", json={"targets": {"nodes": ["node-1"]}})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def recorded(self) -> str:
        """A live session of xa-demo that ended and left its recording (of its sound: the
        chime is not recorded); returns the recording (an upload's sha256)."""
        import tempfile

        from tests.live.recordings import recorded_session

        with tempfile.TemporaryDirectory() as folder:
            record = recorded_session(self.runtime, Path(folder), title="Buổi họp đã ghi âm",
                                      actor="admin", seconds=3.5)
        return str(record.recording_sha256)

    def source(self) -> int:
        r = self.client.post("/api/stream-sources", json={
            "name": f"Đài {self.n()}", "url": "http://127.0.0.1:9/station.mp3"})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def no_relay_on_air(self) -> int:
        """Cancel every slot: a relay at once clashes with the previous caller's (one
        relay per speaker at a time); returns a station to relay."""
        for slot in self.client.get("/api/relay-slots").json():
            if slot["status"] == "active":
                self.client.post(f"/api/relay-slots/{slot['id']}/cancel")
        return self.once("source", self.source)

    def slot(self) -> int:
        at = datetime.now(UTC) + timedelta(days=2, hours=self.n())
        r = self.client.post("/api/relay-slots", json={
            "source_id": self.once("source", self.source), "targets": {"nodes": ["node-1"]},
            "duration_s": 600, "timing": {"kind": "once", "start_at": at.isoformat()}})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def word(self) -> str:
        term = f"tu{self.n()}"
        r = self.client.put("/api/lexicon", json={"term": term, "reading": "từ"})
        assert r.status_code == 200, r.text
        return term


def fake(real_value: Callable[[], Any], dummy: Any) -> Callable[[Ctx, bool], Any]:
    return lambda ctx, real: real_value() if real else dummy


def wav_bytes() -> bytes:
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(np.arange(16000) / 5) * 8000).astype("<i2").tobytes())
    return out.getvalue()


def shared_announcement(ctx: Ctx, real: bool) -> int:
    return ctx.once("draft", ctx.announcement)


def shared_alert(ctx: Ctx, real: bool) -> str:
    return ctx.once("alert", ctx.alert)


def new_alert(ctx: Ctx, real: bool) -> str:
    return ctx.alert() if real else "no-such-alert"


def new_announcement(status: str) -> Callable[[Ctx, bool], Req]:
    return lambda ctx, real: Req({"announcement_id": ctx.announcement(status) if real else 1},
                                 {"json": {"note": "ok"}})


def callers_draft(ctx: Ctx, real: bool) -> Req:
    """A draft of the caller's own: staff may delete only their own (services/
    announcements.py), so each caller gets one written in their name."""
    from controller.models import Announcement

    if not real:
        return Req({"announcement_id": 1})
    aid = ctx.announcement()
    with ctx.runtime.db.session() as s:
        s.get(Announcement, aid).created_by = ctx.shared["who"]
    return Req({"announcement_id": aid})


def user_body(ctx: Ctx, real: bool) -> Req:
    return Req(kwargs={"json": {"username": f"user-{ctx.n()}", "password": "a-long-password-1",
                                "role": "staff"}})


def new_account(ctx: Ctx, real: bool) -> str:
    """An account of its own per call (a lock or a reset must not end the callers')."""
    if not real:
        return "staff"
    name = f"can-bo-{ctx.n()}"
    r = ctx.client.post("/api/users", json={"username": name, "password": "a-long-password-1",
                                             "role": "staff"})
    assert r.status_code == 201, r.text
    return name


def login_form(ctx: Ctx, real: bool) -> Req:
    from tests.conftest import ADMIN_PASSWORD

    return Req(kwargs={"data": {"username": "admin", "password": ADMIN_PASSWORD}})


def password_body(ctx: Ctx, real: bool) -> Req:
    """The caller's own password, kept the same (the sessions still end)."""
    return Req(kwargs={"json": {"current_password": ctx.shared["password_of"],
                                "new_password": ctx.shared["password_of"]}})


def api_token(ctx: Ctx, real: bool) -> int:
    if not real:
        return 1
    r = ctx.client.post("/api/tokens", json={"name": f"tich-hop-{ctx.n()}", "username": "staff"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def speech(ctx: Ctx, real: bool) -> Req:
    return Req(kwargs={"json": {"text": "Xin chào bà con.", "engine": "espeak-ng"}})


def bulletin(ctx: Ctx, real: bool) -> Req:
    """A new bulletin (its own id) for xa-demo."""
    return Req(kwargs={"json": {"external_id": f"cv-{ctx.n()}", "title": "Thông báo của tỉnh",
                                "text": "Tỉnh thông báo lịch tiêm chủng.", "level": "priority",
                                "communes": ["xa-demo"]}})


def callers_bulletin(ctx: Ctx, real: bool) -> Req:
    """A bulletin the caller's own account delivered (external ids are per account)."""
    from controller.services import upstream
    from mqtt_contract import Priority

    if not real:
        return Req({"external_id": "cv-none"})
    external_id = f"cv-{ctx.n()}"
    runtime = ctx.runtime
    with runtime.db.session() as s:
        upstream.receive(s, upstream.Delivery(
            account=ctx.shared["who"], external_id=external_id, title="Tỉnh",
            level=Priority.priority, communes=["xa-demo"], text="Thông báo số một."),
            runtime.content, "draft")
    return Req({"external_id": external_id})


def later(ctx: Ctx) -> str:
    return (datetime.now(UTC) + timedelta(days=3, hours=ctx.n())).isoformat()


POLICY: dict[tuple[str, str], Case] = {
    # FastAPI's own documentation pages
    ("GET", "/openapi.json"): Case(PUBLIC),
    ("GET", "/docs"): Case(PUBLIC),
    ("GET", "/docs/oauth2-redirect"): Case(PUBLIC),
    ("GET", "/redoc"): Case(PUBLIC),
    # health and accounts
    ("GET", "/healthz"): Case(PUBLIC),
    ("GET", "/metrics"): Case(ADMIN),  # Prometheus: an admin account's API token
    ("POST", "/api/auth/token"): Case(PUBLIC, login_form),
    ("GET", "/api/auth/me"): Case(ANY),
    ("POST", "/api/auth/logout"): Case(ANY, ends_sessions=True),
    ("POST", "/api/auth/password"): Case(ANY, password_body, ends_sessions=True),
    ("GET", "/api/tokens"): Case(ADMIN),
    ("POST", "/api/tokens"): Case(ADMIN, lambda c, r: Req(kwargs={"json": {
        "name": f"he-thong-{c.n()}", "username": "staff"}})),
    ("DELETE", "/api/tokens/{token_id}"): Case(ADMIN, lambda c, r: Req(
        {"token_id": api_token(c, r)})),
    ("GET", "/api/communes"): Case(ANY),
    ("PUT", "/api/communes"): Case(ADMIN, lambda c, r: Req(kwargs={"json": {
        "code": "xa-demo", "name": "Xã Demo", "timezone": "Asia/Ho_Chi_Minh"}})),
    ("GET", "/api/users"): Case(ADMIN),
    ("POST", "/api/users"): Case(ADMIN, user_body),
    ("PATCH", "/api/users/{username}"): Case(ADMIN, lambda c, r: Req(
        {"username": new_account(c, r)}, {"json": {"full_name": "Cán bộ xã"}})),
    ("POST", "/api/users/{username}/lock"): Case(ADMIN, lambda c, r: Req(
        {"username": new_account(c, r)})),
    ("POST", "/api/users/{username}/unlock"): Case(ADMIN, lambda c, r: Req(
        {"username": new_account(c, r)})),
    ("POST", "/api/users/{username}/password"): Case(ADMIN, lambda c, r: Req(
        {"username": new_account(c, r)}, {"json": {}})),
    # nodes
    ("GET", "/api/nodes"): Case(ANY),
    ("GET", "/api/nodes/{node_id}"): Case(ANY, lambda c, r: Req({"node_id": "node-1"})),
    ("POST", "/api/nodes/{node_id}/commands"): Case(STAFF, lambda c, r: Req(
        {"node_id": "node-1"}, {"json": {"kind": "test_tone"}})),
    # remote operations (which role may run which kind: tests/integration/
    # test_remote_operations.py; here the kind every STAFF caller may run)
    ("POST", "/api/operations"): Case(STAFF, lambda c, r: Req(kwargs={"json": {
        "kind": "versions", "nodes": ["node-1"], "wait_s": 0}})),
    ("GET", "/api/operations/{operation_id}"): Case(STAFF, lambda c, r: Req(
        {"operation_id": c.once("operation", c.operation)})),
    # announcements and their approval
    ("GET", "/api/announcements"): Case(ANY),
    ("POST", "/api/announcements"): Case(STAFF, speech),
    ("GET", "/api/announcements/{announcement_id}"): Case(ANY, lambda c, r: Req(
        {"announcement_id": shared_announcement(c, r)})),
    ("PATCH", "/api/announcements/{announcement_id}"): Case(STAFF, lambda c, r: Req(
        {"announcement_id": shared_announcement(c, r)}, {"json": {"title": f"t{c.n()}"}})),
    ("POST", "/api/announcements/{announcement_id}/submit"): Case(STAFF,
                                                                   new_announcement("draft")),
    ("POST", "/api/announcements/{announcement_id}/approve"): Case(
        LEADER, new_announcement("submitted")),
    ("POST", "/api/announcements/{announcement_id}/reject"): Case(
        LEADER, new_announcement("submitted")),
    ("POST", "/api/announcements/{announcement_id}/cancel"): Case(STAFF,
                                                                   new_announcement("draft")),
    ("DELETE", "/api/announcements/{announcement_id}"): Case(STAFF, callers_draft),
    # schedules
    ("GET", "/api/schedules"): Case(ANY),
    ("POST", "/api/schedules"): Case(STAFF, lambda c, r: Req(kwargs={"json": {
        "announcement_id": shared_announcement(c, r), "targets": {"nodes": ["node-1"]},
        "timing": {"kind": "once", "start_at": later(c)}}})),
    ("GET", "/api/schedules/{schedule_id}"): Case(ANY, lambda c, r: Req(
        {"schedule_id": c.once("schedule", c.schedule)})),
    ("POST", "/api/schedules/{schedule_id}/cancel"): Case(STAFF, lambda c, r: Req(
        {"schedule_id": c.schedule() if r else 1})),
    # emergency
    ("POST", "/api/emergency"): Case(LEADER, lambda c, r: Req(kwargs={"json": {
        "announcement_id": shared_announcement(c, r), "targets": {"nodes": ["node-1"]}}})),
    ("POST", "/api/emergency/stop"): Case(LEADER, lambda c, r: Req(kwargs={"json": {}})),
    # live sessions (the WebSocket's own checks: tests/web/test_live_page.py)
    ("POST", "/api/live"): Case(STAFF, lambda c, r: Req(kwargs={"json": {
        "targets": {"nodes": ["node-1"]}}})),
    ("GET", "/api/live/recordings"): Case(STAFF, lambda c, r: (
        c.once("recording", c.recorded) if r else None, Req())[1]),
    ("GET", "/api/live/{session_id}"): Case(STAFF, lambda c, r: Req(
        {"session_id": c.once("live", c.live)})),
    ("POST", "/api/live/{session_id}/stop"): Case(STAFF, lambda c, r: Req(
        {"session_id": c.live() if r else "0" * 32})),
    # relays
    ("GET", "/api/stream-sources"): Case(STAFF),
    ("POST", "/api/stream-sources"): Case(ADMIN, lambda c, r: Req(kwargs={"json": {
        "name": f"Đài {c.n()}", "url": "http://127.0.0.1:9/station.mp3"}})),
    ("DELETE", "/api/stream-sources/{source_id}"): Case(ADMIN, lambda c, r: Req(
        {"source_id": c.source() if r else 1})),
    ("POST", "/api/stream-sources/{source_id}/relay"): Case(LEADER, lambda c, r: Req(
        {"source_id": c.no_relay_on_air()},
        {"json": {"targets": {"nodes": ["node-1"]}, "duration_s": 1}})),
    ("GET", "/api/relay-slots"): Case(STAFF),
    ("POST", "/api/relay-slots"): Case(STAFF, lambda c, r: Req(kwargs={"json": {
        "source_id": c.once("source", c.source), "targets": {"nodes": ["node-1"]},
        "duration_s": 600, "timing": {"kind": "once", "start_at": later(c)}}})),
    ("POST", "/api/relay-slots/{slot_id}/approve"): Case(LEADER, lambda c, r: Req(
        {"slot_id": c.slot() if r else 1})),
    ("POST", "/api/relay-slots/{slot_id}/cancel"): Case(STAFF, lambda c, r: Req(
        {"slot_id": c.slot() if r else 1})),
    ("GET", "/api/relay-slots/{slot_id}/log"): Case(STAFF, lambda c, r: Req(
        {"slot_id": c.once("slot", c.slot)})),
    # zones, groups, calendar
    ("GET", "/api/zones"): Case(ANY),
    ("PUT", "/api/zones"): Case(STAFF, lambda c, r: Req(kwargs={"json": {
        "commune": "xa-demo", "code": "thon-1", "name": "Thôn 1"}})),
    ("GET", "/api/groups"): Case(ANY),
    ("PUT", "/api/groups"): Case(STAFF, lambda c, r: Req(kwargs={"json": {
        "name": "cho", "node_ids": ["node-2"]}})),
    ("GET", "/api/calendar"): Case(ANY),
    ("POST", "/api/calendar"): Case(STAFF, lambda c, r: Req(kwargs={"json": {
        "day": f"2032-02-{c.n() % 28 + 1:02d}", "name": "Tết"}})),
    ("DELETE", "/api/calendar/{holiday_id}"): Case(STAFF, lambda c, r: Req(
        {"holiday_id": c.holiday() if r else 1})),
    # content
    ("GET", "/api/templates"): Case(STAFF),
    ("POST", "/api/templates/{template_id}/render"): Case(STAFF, lambda c, r: Req(
        {"template_id": "meeting"}, {"json": {"values": {
            "attendees": "bà con", "meeting": "họp thôn", "time": "19h", "date": "1/1",
            "place": "nhà văn hoá", "agenda": "bầu trưởng thôn"}}})),
    ("POST", "/api/uploads"): Case(STAFF, lambda c, r: Req(kwargs={
        "files": {"file": ("a.wav", wav_bytes(), "audio/wav")}})),
    ("POST", "/api/preview"): Case(STAFF, speech),
    ("POST", "/api/reading"): Case(STAFF, lambda c, r: Req(kwargs={"json": {
        "text": "UBND xã họp lúc 7h30 ngày 2/9."}})),
    ("GET", "/api/lexicon"): Case(STAFF),
    ("PUT", "/api/lexicon"): Case(STAFF, lambda c, r: Req(kwargs={"json": {
        "term": "UBND", "reading": "uỷ ban nhân dân"}})),
    ("DELETE", "/api/lexicon/{term}"): Case(STAFF, lambda c, r: Req(
        {"term": c.word() if r else "x"})),
    # broadcast log and report
    ("GET", "/api/log"): Case(STAFF),
    ("GET", "/api/reports/daily"): Case(STAFF, lambda c, r: Req(kwargs={
        "params": {"day": "2026-01-01", "format": "csv"}})),
    ("GET", "/api/reports/monthly"): Case(STAFF, lambda c, r: Req(kwargs={
        "params": {"month": "2026-01", "format": "xlsx"}})),
    # the provincial source information system (api/upstream.py)
    ("POST", "/api/upstream/bulletins"): Case(UPSTREAM, bulletin),
    ("GET", "/api/upstream/bulletins/{external_id}"): Case(UPSTREAM, callers_bulletin),
    ("GET", "/api/upstream/stats"): Case(UPSTREAM_READERS, lambda c, r: Req(kwargs={
        "params": {"day": "2026-01-01", "format": "csv"}})),
    # camera alerts
    ("GET", "/api/alerts"): Case(OFFICER),
    ("GET", "/api/alerts/stream"): Case(OFFICER, lambda c, r: Req(kwargs={
        "params": {"max_s": 0.2}})),
    ("GET", "/api/alerts/{alert_id}"): Case(OFFICER, lambda c, r: Req(
        {"alert_id": shared_alert(c, r)})),
    ("GET", "/api/alerts/{alert_id}/snapshot"): Case(OFFICER, lambda c, r: Req(
        {"alert_id": shared_alert(c, r)})),
    ("GET", "/api/alerts/{alert_id}/before"): Case(OFFICER, lambda c, r: Req(
        {"alert_id": shared_alert(c, r)})),
    ("POST", "/api/alerts/{alert_id}/acknowledge"): Case(OFFICER, lambda c, r: Req(
        {"alert_id": new_alert(c, r)}, {"json": {"note": "đang tới"}})),
    ("POST", "/api/alerts/{alert_id}/resolve"): Case(OFFICER, lambda c, r: Req(
        {"alert_id": new_alert(c, r)}, {"json": {"note": "xong"}})),
    ("POST", "/api/alerts/{alert_id}/false-alarm"): Case(OFFICER, lambda c, r: Req(
        {"alert_id": new_alert(c, r)}, {"json": {"note": "bóng cây"}})),
    ("GET", "/api/alerts/{alert_id}/evidence"): Case(OFFICER, lambda c, r: Req(
        {"alert_id": shared_alert(c, r)})),
    # pages
    ("GET", "/login"): Case(PUBLIC),
    ("POST", "/login"): Case(PUBLIC, login_form, ok=frozenset({303})),
    ("POST", "/logout"): Case(PUBLIC, ok=frozenset({303}), ends_sessions=True),
    ("GET", "/"): Case(ANY, ok=frozenset({303})),
    ("GET", "/account"): Case(ANY),
    ("POST", "/account"): Case(ANY, lambda c, r: Req(kwargs={"data": {
        "current_password": c.shared["password_of"],
        "new_password": c.shared["password_of"]}}), ends_sessions=True),
    ("GET", "/dashboard"): Case(STAFF),
    ("GET", "/compose"): Case(STAFF),
    ("GET", "/emergency"): Case(LEADER),
    ("GET", "/live"): Case(STAFF),
    ("GET", "/relay"): Case(STAFF),
    ("GET", "/villages"): Case(STAFF),
    ("GET", "/schedules"): Case(STAFF),
    ("GET", "/nodes"): Case(STAFF),
    ("GET", "/log"): Case(STAFF),
    ("GET", "/announcements/{announcement_id}"): Case(STAFF, lambda c, r: Req(
        {"announcement_id": shared_announcement(c, r)})),
    ("GET", "/nodes/{node_id}/plan"): Case(STAFF, lambda c, r: Req({"node_id": "node-1"})),
    ("GET", "/audio/announcements/{announcement_id}"): Case(STAFF, lambda c, r: Req(
        {"announcement_id": shared_announcement(c, r)})),
    ("GET", "/alerts"): Case(OFFICER),
    ("GET", "/admin/users"): Case(ADMIN),
    ("GET", "/admin/audit"): Case(ADMIN),
    ("POST", "/admin/users"): Case(ADMIN, lambda c, r: Req(kwargs={"data": {
        "username": f"web-user-{c.n()}", "password": "a-long-password-1", "role": "staff"}}),
        ok=frozenset({303})),
}
MOUNTS = {"/static", "/docs-assets"}  # the pages' CSS and scripts, Swagger UI's: public


def app_routes(app: Any) -> Iterator[tuple[str, str, bool]]:
    """(method, path, in the OpenAPI schema) for every route the app serves."""
    for route in app.routes:
        if isinstance(route, Mount):
            continue
        contexts = getattr(route, "effective_route_contexts", None)
        for r in (contexts() if contexts else [route]):
            for method in sorted(set(r.methods or ()) - {"HEAD", "OPTIONS"}):
                yield method, r.path, bool(getattr(r, "include_in_schema", False))


def is_page(path: str) -> bool:
    return not path.startswith("/api/") and path not in ("/healthz", "/metrics", "/openapi.json",
                                                         "/docs", "/docs/oauth2-redirect",
                                                         "/redoc")


def test_every_route_enforces_its_roles(controller, broker):
    from controller.security import Role
    from controller.services import users
    from controller.web.csrf import CSRF_COOKIE, new_token
    from tests.conftest import ADMIN_PASSWORD

    app, runtime = controller.app, controller.runtime
    served = {(m, p) for m, p, _ in app_routes(app)}
    documented = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    assert documented <= served
    missing = sorted(served - set(POLICY))
    assert not missing, f"routes without a role policy (add them to POLICY): {missing}"
    stale = sorted(set(POLICY) - served)
    assert not stale, f"POLICY names routes the app no longer serves: {stale}"
    assert {r.path for r in app.routes if isinstance(r, Mount)} == MOUNTS

    for role in ROLES[:-1]:
        with runtime.db.session() as s:
            users.create_user(s, role, f"{role}-password-123", Role(role))

    def session_of(role: str) -> str:
        with runtime.db.session() as s:
            return users.sign_in(s, users.get_user(s, role), runtime.secret_key,
                                 timedelta(hours=1))

    tokens = {role: session_of(role) for role in ROLES}
    csrf = new_token(runtime.secret_key)
    ctx = Ctx(controller)
    failures, checked = [], 0
    for (method, path), case in sorted(POLICY.items()):
        page = is_page(path)
        for who in (None, *ROLES):
            allowed = case.allowed is None or who in case.allowed
            ctx.shared["password_of"] = (ADMIN_PASSWORD if who == "admin"
                                         else f"{who}-password-123")
            ctx.shared["who"] = who
            req = case.prepare(ctx, allowed)
            kwargs = dict(req.kwargs)
            if case.ends_sessions and who:
                tokens[who] = session_of(who)
            headers = {"Authorization": ""}
            controller.cookies.clear()
            if page:  # pages: the session cookie; forms carry the CSRF token
                if who:
                    controller.cookies.set("loaxa_session", tokens[who])
                if method == "POST":
                    controller.cookies.set(CSRF_COOKIE, csrf)
                    kwargs["data"] = {**kwargs.get("data", {}), "csrf_token": csrf}
            elif who:
                headers["Authorization"] = f"Bearer {tokens[who]}"
            r = controller.request(method, path.format(**req.path), headers=headers,
                                   follow_redirects=False, **kwargs)
            checked += 1
            if case.ends_sessions and who:
                tokens[who] = session_of(who)
                if who == "admin":  # Ctx creates state through the admin's API
                    controller.headers["Authorization"] = f"Bearer {session_of('admin')}"
            if allowed:
                good = r.status_code in case.ok
                want = "/".join(map(str, sorted(case.ok))) if len(case.ok) < 5 else "2xx"
            elif who is None:
                good = (r.status_code == PAGE_LOGIN and r.headers["location"].startswith(
                    "/login")) if page else r.status_code == 401
                want = "303 → /login" if page else "401"
            else:
                good, want = r.status_code == 403, "403"
            if not good:
                failures.append(f"{method} {path} as {who or 'anonymous'}: "
                                f"{r.status_code} (want {want}) {r.text[:150]}")
    controller.cookies.clear()
    assert not failures, "\n".join(failures)
    assert checked == len(POLICY) * (len(ROLES) + 1)
    print(f"\nrole matrix: {len(POLICY)} routes × {len(ROLES) + 1} callers = {checked} checks")


@pytest.mark.parametrize("path", ["/login", "/account", "/dashboard", "/compose", "/emergency",
                                  "/live", "/relay", "/villages", "/schedules", "/nodes",
                                  "/log",
                                  "/alerts", "/admin/users", "/admin/audit"])
def test_pages_are_html_with_a_strict_content_security_policy(controller, path):
    controller.cookies.set("loaxa_session", controller.headers["Authorization"].split()[1])
    try:
        r = controller.get(path, headers={"Authorization": ""})
    finally:
        controller.cookies.clear()
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert "<script>" not in r.text, "no inline scripts: the CSP would block them"


def test_templates_escape_user_content(controller):
    """Text from users (announcement text, titles, names) is never markup on a page."""
    r = controller.post("/api/announcements", json={
        "title": "<script>alert(1)</script>", "text": "Họp <b>thôn</b> & \"nhà\" văn hoá.",
        "engine": "espeak-ng"})
    assert r.status_code == 201, r.text
    submitted = controller.post(f"/api/announcements/{r.json()['id']}/submit", json={})
    assert submitted.status_code == 200  # the pending list shows the whole text
    token = login(controller, "admin", __import__("tests.conftest",
                                                  fromlist=["ADMIN_PASSWORD"]).ADMIN_PASSWORD)
    controller.cookies.set("loaxa_session", token)
    try:
        page = controller.get("/schedules", headers={"Authorization": ""}).text
    finally:
        controller.cookies.clear()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Họp &lt;b&gt;thôn&lt;/b&gt; &amp; &#34;nhà&#34; văn hoá." in page


# ---------------------------------------------------------------------- the commune axis

OTHER = "xa-khac"
"""A second commune of the deployment, with accounts of its own and no nodes."""
NEUTRAL = {
    # lists and pages: a commune account may open them; it must see none of xa-demo's
    ("GET", "/api/auth/me"), ("GET", "/api/communes"), ("GET", "/api/nodes"),
    ("GET", "/api/announcements"), ("GET", "/api/schedules"), ("GET", "/api/zones"),
    ("GET", "/api/groups"), ("GET", "/api/calendar"), ("GET", "/api/log"),
    ("GET", "/api/reports/daily"), ("GET", "/api/reports/monthly"), ("GET", "/api/alerts"),
    ("GET", "/api/alerts/stream"), ("GET", "/api/stream-sources"), ("GET", "/api/relay-slots"),
    ("GET", "/api/templates"), ("GET", "/api/lexicon"), ("GET", "/"), ("GET", "/account"),
    ("GET", "/dashboard"), ("GET", "/compose"), ("GET", "/emergency"), ("GET", "/live"),
    ("GET", "/relay"), ("GET", "/villages"), ("GET", "/schedules"), ("GET", "/nodes"),
    ("GET", "/log"), ("GET", "/alerts"), ("GET", "/api/upstream/stats"),
    ("GET", "/api/live/recordings"),
    # what a commune makes of its own, naming nothing of xa-demo's
    ("POST", "/api/announcements"), ("POST", "/api/preview"), ("POST", "/api/reading"),
    ("POST", "/api/uploads"), ("POST", "/api/templates/{template_id}/render"),
    ("PUT", "/api/lexicon"), ("POST", "/api/calendar"), ("POST", "/api/emergency/stop"),
    ("POST", "/api/auth/logout"), ("POST", "/api/auth/password"), ("POST", "/account"),
}
"""Routes a commune account may call with success (the answer then carries nothing of
another commune). Every other route, given xa-demo's records or nodes, must refuse."""


def foreign_markers(ctx: Ctx) -> list[str]:
    """What only xa-demo's data contains: its nodes' ids and names, its announcements'
    text, its alerts' ids, its recorded session's title and recording."""
    from controller.models import Node

    with ctx.runtime.db.session() as s:
        nodes = [(n.node_id, n.name) for n in s.scalars(__import__("sqlalchemy").select(Node))]
    return ([i for i, _ in nodes] + [name for _, name in nodes if name]
            + ["Thông báo số", "Buổi họp đã ghi âm"]
            + [v for k, v in ctx.shared.items() if k in ("alert", "recording")])


def test_no_commune_account_reaches_another_communes_data(controller, broker):
    """The role matrix's commune axis: the staff, leader and officer of another commune
    call every route they may call, each given xa-demo's records and nodes (made by the
    province administrator). A route that names xa-demo's must refuse (4xx); a list or a
    page may answer, with nothing of xa-demo's in it; none answers 5xx."""
    from controller.security import Role
    from controller.services import communes, users

    runtime = controller.runtime
    with runtime.db.session() as s:
        communes.ensure_commune(s, OTHER)
        for role in ("staff", "leader", "officer"):
            users.create_user(s, f"{role}-khac", f"{role}-password-123", Role(role),
                              commune=OTHER)

    def token(role: str) -> str:
        with runtime.db.session() as s:
            return users.sign_in(s, users.get_user(s, f"{role}-khac"), runtime.secret_key,
                                 timedelta(hours=1))

    ctx = Ctx(controller)
    ctx.once("alert", ctx.alert)
    failures, checked = [], 0
    for (method, path), case in sorted(POLICY.items()):
        if case.allowed is None:
            continue
        for role in ("staff", "leader", "officer"):
            if role not in case.allowed:
                continue
            ctx.shared["password_of"], ctx.shared["who"] = f"{role}-password-123", role
            req = case.prepare(ctx, True)
            markers = foreign_markers(ctx)
            kwargs = dict(req.kwargs)
            headers = {"Authorization": f"Bearer {token(role)}"}
            controller.cookies.clear()
            if is_page(path):
                from controller.web.csrf import CSRF_COOKIE, new_token

                headers = {"Authorization": ""}
                controller.cookies.set("loaxa_session", token(role))
                if method == "POST":
                    csrf = new_token(runtime.secret_key)
                    controller.cookies.set(CSRF_COOKIE, csrf)
                    kwargs["data"] = {**kwargs.get("data", {}), "csrf_token": csrf}
            r = controller.request(method, path.format(**req.path), headers=headers,
                                   follow_redirects=False, **kwargs)
            checked += 1
            body = r.text if "event-stream" not in r.headers.get("content-type", "") else (
                r.text)
            leaked = [m for m in markers if m in body]
            who = f"{method} {path} as {role} of {OTHER}"
            if r.status_code >= 500:
                failures.append(f"{who}: {r.status_code} {body[:150]}")
            elif (method, path) in NEUTRAL:
                if r.status_code < 400 and leaked:
                    failures.append(f"{who}: {r.status_code} shows {leaked[:3]}")
            elif r.status_code < 400:
                failures.append(f"{who}: {r.status_code}, want a refusal {body[:150]}")
    controller.cookies.clear()
    assert not failures, "\n".join(failures)
    assert checked > 150
    # the markers are real: xa-demo's own officer sees its nodes and its alert
    with runtime.db.session() as s:
        users.create_user(s, "officer-demo", "officer-password-123", Role.officer,
                          commune="xa-demo")
        own = users.sign_in(s, users.get_user(s, "officer-demo"), runtime.secret_key,
                            timedelta(hours=1))
    mine = {"Authorization": f"Bearer {own}"}
    assert "node-1" in controller.get("/api/nodes", headers=mine).text
    assert ctx.shared["recording"] in controller.get("/api/live/recordings").text
    assert ctx.shared["alert"] in controller.get("/api/alerts", headers=mine).text
    assert ctx.shared["alert"] not in controller.get(
        "/api/alerts", headers={"Authorization": f"Bearer {token('officer')}"}).text
    print(f"\ncommune axis: {checked} calls from {OTHER}")
