"""The live API's refusals: who may open a session and send it sound (issue 11)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from tests.conftest import login, make_user


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
