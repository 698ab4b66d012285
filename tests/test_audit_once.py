"""Every change a person makes through the API leaves exactly one audit record naming them.

The services audit what they do (never the routes); a request made of several steps (an
announcement created, approved and scheduled at once) is one record listing its steps.
The table below must cover every mutating route the API has: a new route without a row
here fails the first test, so nobody adds a change that is not audited.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import ADMIN_PASSWORD

NOT_CHANGES = {
    ("POST", "/api/auth/token"): "signing in changes no record (the login limiter logs it)",
    ("POST", "/api/templates/{template_id}/render"): "fills a template, stores nothing",
    ("POST", "/api/preview"): "renders audio to listen to, schedules nothing",
    ("POST", "/api/reading"): "shows how a text will be read aloud, stores nothing",
}


def tone_wav(seconds: float = 1.0, rate: int = 16_000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i * 0.1)))
                               for i in range(int(seconds * rate))))
    return buf.getvalue()


def future(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def store_alert(controller) -> str:  # type: ignore[no-untyped-def]
    from controller.services import alerts
    from mqtt_contract import Alert

    alert = Alert(id=f"audit-{datetime.now(UTC).timestamp()}", node="node-1", camera="cong",
                  kind="no_helmet", at=datetime.now(UTC), confidence=0.9)
    runtime = controller.runtime
    with runtime.db.session() as s:
        alerts.store_alert(s, "xa-demo", alert, runtime.media)
    return alert.id


Step = tuple[str, str, Callable[[dict], dict]]
"""(method, route path, state → request keyword arguments); ``{name}`` in the path is
filled from the state, which each step's answer may extend."""

STEPS: list[Step] = [
    ("POST", "/api/users", lambda st: {"json": {"username": "bientap2", "role": "staff",
                                                "password": "mat-khau-dai-1"}}),
    ("PATCH", "/api/users/{username}", lambda st: {"json": {"full_name": "Biên tập 2",
                                                            "role": "leader"}}),
    ("POST", "/api/users/{username}/lock", lambda st: {}),
    ("POST", "/api/users/{username}/unlock", lambda st: {}),
    ("POST", "/api/users/{username}/password", lambda st: {"json": {}}),
    ("POST", "/api/announcements", lambda st: {"json": {"text": "Họp thôn tối nay.",
                                                         "engine": "espeak-ng"}}),
    ("PATCH", "/api/announcements/{announcement_id}",
     lambda st: {"json": {"title": "Họp thôn"}}),
    ("POST", "/api/announcements/{announcement_id}/submit", lambda st: {"json": {}}),
    ("POST", "/api/announcements/{announcement_id}/reject",
     lambda st: {"json": {"note": "sửa lại"}}),
    ("POST", "/api/announcements/{announcement_id}/submit", lambda st: {"json": {}}),
    ("POST", "/api/announcements/{announcement_id}/approve", lambda st: {"json": {}}),
    ("POST", "/api/schedules", lambda st: {"json": {
        "announcement_id": st["announcement_id"], "targets": {"nodes": ["node-1"]},
        "timing": {"kind": "once", "start_at": future(30)}}}),
    ("POST", "/api/schedules/{schedule_id}/cancel", lambda st: {}),
    ("POST", "/api/announcements/{announcement_id}/cancel", lambda st: {}),
    ("DELETE", "/api/announcements/{announcement_id}", lambda st: {}),
    # an announcement scheduled by its leader author: three steps, one record
    ("POST", "/api/announcements", lambda st: {"json": {
        "text": "Tiêm phòng cho trẻ.", "engine": "espeak-ng", "start_at": future(40),
        "nodes": ["node-2"]}}),
    ("POST", "/api/emergency", lambda st: {"json": {"text": "Bão khẩn cấp.",
                                                     "engine": "espeak-ng"}}),
    ("POST", "/api/emergency/stop", lambda st: {"json": {}}),
    ("POST", "/api/live", lambda st: {"json": {"targets": {"nodes": ["node-1"]}}}),
    ("POST", "/api/live/{live_id}/stop", lambda st: {}),
    ("POST", "/api/stream-sources", lambda st: {"json": {
        "name": "VOV1", "url": "http://127.0.0.1:9/vov1.mp3"}}),
    ("POST", "/api/relay-slots", lambda st: {"json": {
        "source_id": st["source_id"], "targets": {"nodes": ["node-1"]}, "duration_s": 600,
        "timing": {"kind": "once", "start_at": future(50)}}}),
    ("POST", "/api/relay-slots/{slot_id}/approve", lambda st: {}),
    ("POST", "/api/relay-slots/{slot_id}/cancel", lambda st: {}),
    ("POST", "/api/stream-sources/{source_id}/relay", lambda st: {"json": {
        "targets": {"nodes": ["node-1"]}, "duration_s": 1}}),
    ("DELETE", "/api/stream-sources/{source_id}", lambda st: {}),
    ("POST", "/api/nodes/{node_id}/commands", lambda st: {"json": {"kind": "volume",
                                                                   "volume": 60}}),
    ("POST", "/api/operations", lambda st: {"json": {"kind": "versions", "nodes": ["node-1"],
                                                      "wait_s": 0}}),
    ("PUT", "/api/communes", lambda st: {"json": {"code": "xa-moi", "name": "Xã Mới"}}),
    ("PUT", "/api/zones", lambda st: {"json": {"commune": "xa-demo", "code": "thon-1",
                                               "name": "Thôn 1"}}),
    ("PUT", "/api/groups", lambda st: {"json": {"name": "cho", "node_ids": ["node-1"]}}),
    ("POST", "/api/calendar", lambda st: {"json": {"day": "2027-01-01", "name": "Tết"}}),
    ("DELETE", "/api/calendar/{id}", lambda st: {}),
    ("POST", "/api/uploads", lambda st: {"files": {"file": ("ghi-am.wav", tone_wav(),
                                                            "audio/wav")}}),
    ("PUT", "/api/lexicon", lambda st: {"json": {"term": "UBND",
                                                 "reading": "uỷ ban nhân dân"}}),
    ("DELETE", "/api/lexicon/{term}", lambda st: {}),
    ("POST", "/api/alerts/{alert_id}/acknowledge", lambda st: {"json": {}}),
    ("POST", "/api/alerts/{alert_id}/resolve", lambda st: {"json": {"note": "đã nhắc"}}),
    ("POST", "/api/alerts/{second_alert}/false-alarm",
     lambda st: {"json": {"note": "bóng cây"}}),
    ("POST", "/api/upstream/bulletins", lambda st: {"json": {
        "external_id": "cv-1273", "title": "Tỉnh thông báo", "text": "Lịch tiêm chủng.",
        "level": "priority", "communes": ["xa-demo"]}}),
    ("POST", "/api/tokens", lambda st: {"json": {"name": "tich-hop", "username": "bientap2"}}),
    ("DELETE", "/api/tokens/{token_id}", lambda st: {}),
    # last: these end the admin's sessions
    ("POST", "/api/auth/password", lambda st: {"json": {
        "current_password": ADMIN_PASSWORD, "new_password": "mat-khau-moi-dai-1"}}),
    ("POST", "/api/auth/logout", lambda st: {}),
]


def mutating_routes(app) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {(method.upper(), path) for path, ops in app.openapi()["paths"].items()
            for method in ops if method not in ("get", "head")}


def route_of(path_template: str) -> str:
    """The table fills some placeholders with other names (two alerts); the route's own."""
    return (path_template.replace("{second_alert}", "{alert_id}")
            .replace("{live_id}", "{session_id}")
            .replace("/api/calendar/{id}", "/api/calendar/{holiday_id}"))


def test_the_table_covers_every_mutating_route(controller):
    covered = {(m, route_of(p)) for m, p, _ in STEPS} | set(NOT_CHANGES)
    assert mutating_routes(controller.app) <= covered, (
        "a mutating route has no audit check here: add it to STEPS (or, if it changes "
        "nothing, to NOT_CHANGES with the reason)")


@pytest.mark.timeout(240)
def test_each_mutating_route_leaves_exactly_one_audit_record_naming_the_actor(controller):
    from controller.models import AuditEvent

    state: dict = {"node_id": "node-1", "term": "UBND", "username": "bientap2",
                   "alert_id": store_alert(controller),
                   "second_alert": store_alert(controller)}
    runtime = controller.runtime

    def audit_rows() -> list[AuditEvent]:
        with runtime.db.session() as s:
            return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))

    with runtime.db.session() as s:
        seen = s.scalar(select(func.max(AuditEvent.id))) or 0
    for method, path, kwargs in STEPS:
        r = controller.request(method, path.format(**state), **kwargs(state))
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
        body = r.json() if r.content and "json" in r.headers.get("content-type", "") else {}
        if path == "/api/announcements" and "id" in body:
            state.setdefault("announcement_id", body["id"])
        if path == "/api/schedules":
            state["schedule_id"] = body["id"]
        if path == "/api/calendar" and method == "POST":
            state["id"] = body["id"]
        if path == "/api/tokens":
            state["token_id"] = body["id"]
        if path == "/api/live":
            state["live_id"] = body["id"]
        if path == "/api/stream-sources" and method == "POST":
            state["source_id"] = body["id"]
        if path == "/api/relay-slots":
            state["slot_id"] = body["id"]
        if path == "/api/auth/password":  # every session ended: go on with the new one
            controller.headers["Authorization"] = f"Bearer {body['access_token']}"
        new = [e for e in audit_rows() if e.id > seen]
        assert len(new) == 1, (f"{method} {path} left {len(new)} audit records: "
                               f"{[(e.action, e.detail) for e in new]}")
        assert new[0].actor == "admin", f"{method} {path} names {new[0].actor!r}"
        seen = new[0].id


def test_a_request_of_several_steps_lists_them_in_its_one_record(controller):
    from controller.services import audit

    r = controller.post("/api/announcements", json={
        "text": "Thu gom rác sáng mai.", "engine": "espeak-ng", "start_at": future(50),
        "nodes": ["node-3"]})
    assert r.status_code == 201, r.text
    with controller.runtime.db.session() as s:
        [event] = audit.history(s, "announcement", r.json()["id"])
        assert audit.actions(event) == ["create", "approve", "schedule"]


def test_a_change_that_fails_leaves_no_record_and_sends_nothing(controller):
    """A clash (409) rolls back the whole request: no audit record, no plan published."""
    from controller.models import AuditEvent

    at = future(60)
    first = controller.post("/api/announcements", json={
        "text": "Họp chi bộ.", "engine": "espeak-ng", "start_at": at, "nodes": ["node-1"],
        "priority": "ordinary"})
    assert first.status_code == 201, first.text
    runtime = controller.runtime
    published = []
    original = runtime.link.publish_plan
    runtime.link.publish_plan = lambda *a, **k: published.append(a) or original(*a, **k)
    try:
        with runtime.db.session() as s:
            before = s.scalar(select(func.count(AuditEvent.id)))
        clash = controller.post("/api/announcements", json={
            "text": "Họp tổ dân phố.", "engine": "espeak-ng", "start_at": at,
            "nodes": ["node-1"], "priority": "ordinary"})
        assert clash.status_code == 409, clash.text
        with runtime.db.session() as s:
            assert s.scalar(select(func.count(AuditEvent.id))) == before
        assert published == []
    finally:
        runtime.link.publish_plan = original
