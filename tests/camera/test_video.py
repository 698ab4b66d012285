"""End to end on the shared street clips: one rider without a helmet → one alert, one reminder."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.camera import CameraAlert, CameraWorker
from firmware_config.camera import CameraConfig

from .conftest import VIDEO, need

pytestmark = pytest.mark.slow


def drive(path: Path, model: Path | None, fps: float = 15.0):
    """Feed a clip through a worker's frame handler at ``fps`` (no thread, no pacing)."""
    alerts: list[CameraAlert] = []
    reminders: list[tuple[str, str]] = []

    def remind(camera: str, kind: str) -> bool:
        reminders.append((camera, kind))
        return True

    cfg = CameraConfig(id="campus", source=str(path), fps=fps, helmet={"model": model})
    worker = CameraWorker(cfg, alerts.append, remind)
    cap = cv2.VideoCapture(str(path))
    native = cap.get(cv2.CAP_PROP_FPS)
    step = max(1, round(native / fps))
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i % step == 0:
            worker.handle_frame(frame, i / native)
        i += 1
    cap.release()
    return worker, alerts, reminders


def test_rider_without_helmet_raises_one_alert(shared_model) -> None:
    worker, alerts, reminders = drive(need(VIDEO / "thai_campus_motorbike_test3.mp4"), shared_model)
    assert [a.kind for a in alerts] == ["no_helmet"]
    alert = alerts[0]
    assert alert.camera == "campus" and alert.at.tzinfo is not None and alert.confidence >= 0.5
    assert any(b[4] == "without_helmet" for b in alert.boxes)
    assert 1000 < len(alert.snapshot_jpeg) <= 200_000
    snap = cv2.imdecode(np.frombuffer(alert.snapshot_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert snap is not None and snap.shape[1] == 960
    assert reminders == [("campus", "no_helmet")]
    assert worker.stats().alerts == 1 and worker.stats().reminders == 1


def test_rider_with_helmet_raises_none(shared_model) -> None:
    worker, alerts, reminders = drive(need(VIDEO / "thai_campus_motorbike_test2.mp4"), shared_model)
    assert alerts == [] and reminders == []
    assert worker.stats().model_runs > 0  # the model did run on the motion


def test_without_model_runs_motion_only_and_says_so(caplog) -> None:
    caplog.set_level(logging.WARNING)
    worker, alerts, _ = drive(need(VIDEO / "thai_campus_motorbike_test2.mp4"), None)
    assert alerts == [] and worker.stats().frames > 30
    assert worker.pipeline.last_motion is not None
    assert "running motion only" in caplog.text
