"""A dumping alert on the officers' desk: its own kind, with both pictures."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import cv2
import numpy as np

from mqtt_contract import Alert, Box


def jpeg_b64(value: int) -> str:
    ok, jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), value, np.uint8))
    assert ok
    return base64.b64encode(jpeg.tobytes()).decode()


def test_dumping_alert_is_stored_and_shown_with_before_and_after(controller) -> None:
    from controller.services import alerts

    alert = Alert(id=uuid.uuid4().hex, node="node-1", camera="point-1", kind="dumping",
                  at=datetime.now(UTC), confidence=1.0,
                  boxes=[Box(x1=4, y1=4, x2=20, y2=20, label="left_object", confidence=1.0)],
                  snapshot_jpeg_b64=jpeg_b64(200), before_jpeg_b64=jpeg_b64(30))
    runtime = controller.runtime
    with runtime.db.session() as s:
        assert alerts.record_alert(s, "xa-demo", alert, runtime.media)
    after = controller.get(f"/api/alerts/{alert.id}/snapshot")
    before = controller.get(f"/api/alerts/{alert.id}/before")
    assert after.status_code == before.status_code == 200
    assert before.content.startswith(b"\xff\xd8") and before.content != after.content
    from controller.web.pages import SESSION_COOKIE

    token = controller.headers["Authorization"].removeprefix("Bearer ")
    controller.cookies.set(SESSION_COOKIE, token)
    page = controller.get("/alerts")
    assert page.status_code == 200, page.text[:200]
    assert "Đổ rác" in page.text and f"/api/alerts/{alert.id}/before" in page.text
    missing = controller.get(f"/api/alerts/{uuid.uuid4().hex}/before")
    assert missing.status_code == 404
