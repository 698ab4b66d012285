"""Alert events and their size-capped snapshots."""

from __future__ import annotations

from datetime import datetime

import cv2
import numpy as np
import pytest

from edge.camera.events import CameraAlert, draw_boxes, encode_jpeg


def test_snapshot_is_capped() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    jpeg = encode_jpeg(noise, max_bytes=200_000)
    assert len(jpeg) <= 200_000
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[1] <= 1280


def test_boxes_are_drawn() -> None:
    img = np.zeros((100, 100, 3), np.uint8)
    out = draw_boxes(img, [(10, 10, 50, 50, "without_helmet", 0.9)])
    assert out[10, 30].tolist() == [0, 0, 255] and img.sum() == 0


def test_alert_defaults_and_naive_time_rejected() -> None:
    a = CameraAlert(camera="c", kind="no_helmet", confidence=0.8, boxes=[], snapshot_jpeg=b"")
    assert a.at.tzinfo is not None and len(a.id) == 36
    with pytest.raises(ValueError):
        CameraAlert("c", "k", 0.1, [], b"", at=datetime(2025, 1, 1))
