"""The live API's refusals: who may open a session and send it sound (issue 11)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from controller.domain import Targets
from mqtt_contract import LiveSource
from tests.conftest import login, make_user
from tests.live.recordings import recorded_session


def test_only_staff_from_our_own_pages_may_send_a_session_its_sound(controller: Any) -> None:
    r = controller.post("/api/live", json={"targets": {"zones": ["khong-co"]}})
    assert r.status_code == 409 and r.json()["code"] == "live_refused"
    assert "không tồn tại" in r.json()["message"]
    opened = controller.post("/api/live", json={"targets": {"nodes": ["node-1"]},
                                                "title": "Họp"})
    assert opened.status_code == 201, opened.text
    audio = opened.json()["audio"]
    make_user(controller, "officer1", "officer")
    officer = login(controller, "officer1", "officer1-password-123")
    admin = controller.headers["Authorization"].removeprefix("Bearer ")
    for query, headers in ((audio, {}), (f"{audio}?token={officer}", {}),
                           (f"{audio}?token={admin}", {"origin": "https://elsewhere.example"})):
        with pytest.raises(WebSocketDisconnect) as refused, controller.websocket_connect(
                query, headers=headers):
            pass
        assert refused.value.code == 4403
    with controller.websocket_connect(f"{audio}?token={admin}") as ws:
        hello = ws.receive_json()
        assert hello["ready"] is True and hello["chime_s"] > 1
    status = controller.get(opened.json()["audio"].removesuffix("/audio")).json()
    assert status["ended_at"] is not None, "closing the socket ends the session"
    assert status["end_reason"] == "the speaker's page closed"
    assert controller.get("/api/live/" + "0" * 32).status_code == 404


def test_past_sessions_recordings_are_listed_for_their_commune_only(
        controller: Any, tmp_path: Path) -> None:
    """``GET /api/live/recordings``: what a session left, newest first, in words (title,
    kind, who spoke, how long); a relay by its station's name; another commune's staff
    sees none of them; an announcement made of one plays that recording."""
    from controller.models import LiveBroadcast, StreamSource
    from controller.security import Role
    from controller.services import communes, live, users

    runtime = controller.runtime
    with runtime.db.session() as s:
        users.create_user(s, "bientap", "bientap-password-123", Role.staff,
                          "Nguyễn Thị Biên Tập", commune="xa-demo")
        communes.ensure_commune(s, "xa-khac")
        users.create_user(s, "khac", "khac-password-123", Role.staff, commune="xa-khac")
    staff = {"Authorization": f"Bearer {login(controller, 'bientap', 'bientap-password-123')}"}
    other = {"Authorization": f"Bearer {login(controller, 'khac', 'khac-password-123')}"}
    assert controller.get("/api/live/recordings", headers=staff).json() == []

    spoken = recorded_session(runtime, tmp_path, title="Họp thôn", actor="bientap")
    assert spoken.recording_s and spoken.recording_s > 2  # 5 s spoken, the chime not kept
    with runtime.db.session(commune="xa-demo") as s:  # a relay's airing, written as the runner does
        station = StreamSource(name="VOV1", url="http://127.0.0.1:9/vov1.mp3", created_by="admin")
        s.add(station)
        s.flush()
        s.add(LiveBroadcast(id="f" * 32, title="", source=LiveSource.relay,
                            targets=Targets.of(nodes=["node-1"]), started_by="relay",
                            ended_at=datetime.now(UTC), stream_source_id=station.id))
    with runtime.db.session() as s:
        live.keep_recording(s, "f" * 32, spoken.recording_sha256, "ogg", 3.0, 100)
        open_one = LiveBroadcast(id="e" * 32, title="Đang nói", source=LiveSource.microphone,
                                 targets=Targets.of(nodes=["node-1"]), started_by="bientap",
                                 commune="xa-demo")
        s.add(open_one)  # on air: no recording yet, not listed

    r = controller.get("/api/live/recordings", headers=staff)
    assert r.status_code == 200, r.text
    relayed, mine = r.json()
    assert relayed == {**relayed, "title": "Tiếp sóng không tên", "source": "relay",
                       "speaker": "VOV1", "duration_s": 3.0}
    assert mine["title"] == "Họp thôn" and mine["source"] == "microphone"
    assert mine["speaker"] == "Nguyễn Thị Biên Tập" and mine["started_by"] == "bientap"
    assert mine["upload"] == spoken.recording_sha256
    assert mine["duration_s"] == round(spoken.recording_s, 1)
    assert datetime.fromisoformat(mine["ended_at"]) > datetime.fromisoformat(mine["started_at"])
    assert [x["title"] for x in controller.get("/api/live/recordings?limit=1",
                                               headers=staff).json()] == ["Tiếp sóng không tên"]
    assert controller.get("/api/live/recordings?limit=0", headers=staff).status_code == 422
    assert controller.get("/api/live/recordings", headers=other).json() == []
    assert len(controller.get("/api/live/recordings").json()) == 2  # the province: all

    made = controller.post("/api/announcements", headers=staff, json={
        "title": "Phát lại họp thôn", "items": [
            {"kind": "chime"}, {"kind": "recording", "upload": mine["upload"]}]})
    assert made.status_code == 201, made.text
    theirs = controller.post("/api/announcements", headers=other, json={
        "title": "Của xã khác", "items": [{"kind": "recording", "upload": mine["upload"]}]})
    assert theirs.status_code == 422, "another commune's recording is not theirs to air"
    assert theirs.json()["code"] == "content_invalid"
