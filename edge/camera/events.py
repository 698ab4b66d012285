"""Alert events the camera worker hands to the agent, with their JPEG snapshot."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import cv2
import numpy as np

AlertBox = tuple[int, int, int, int, str, float]
"""``(x1, y1, x2, y2, label, confidence)`` in pixels of the camera frame."""



class AlertKind(StrEnum):
    """What a camera alert is about (the ``kind`` on the wire and the reminder's key)."""

    no_helmet = "no_helmet"
    motion_in_zone = "motion_in_zone"
    dumping = "dumping"
    """An object left in a zone watched for dumping (``left_object.py``)."""


_COLOURS = {"without_helmet": (0, 0, 255), "with_helmet": (0, 200, 0)}
_DEFAULT_COLOUR = (0, 200, 255)


@dataclass(slots=True)
class CameraAlert:
    """One confirmed event on one camera (stored in the agent's outbox, sent over MQTT)."""

    camera: str
    kind: str
    """An :class:`AlertKind` value."""
    confidence: float
    boxes: list[AlertBox]
    snapshot_jpeg: bytes
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    detail: dict[str, str] = field(default_factory=dict)
    """Extra context, e.g. the zone name or the track id."""
    before_jpeg: bytes | None = None
    """The scene before the event (``dumping``: before the object was put down)."""

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("CameraAlert.at must be timezone-aware (UTC)")


def draw_boxes(frame: np.ndarray, boxes: Sequence[AlertBox]) -> np.ndarray:
    """A copy of the frame with the boxes drawn, coloured by class (red: no helmet), so the
    snapshot shows what was seen. No words: OpenCV's fonts have no Vietnamese letters, so
    the controller labels the boxes in Vietnamese from the alert's ``boxes``
    (``controller/services/evidence.py``) rather than the node writing English."""
    out = frame.copy()
    thickness = max(1, round(max(frame.shape[:2]) / 400))
    for x1, y1, x2, y2, label, _conf in boxes:
        colour = _COLOURS.get(label, _DEFAULT_COLOUR)
        cv2.rectangle(out, (int(x1), int(y1)), (int(x2), int(y2)), colour, thickness)
    return out


def encode_jpeg(
    image: np.ndarray, max_bytes: int = 200_000, max_width: int = 1280, quality: int = 85
) -> bytes:
    """JPEG no larger than ``max_bytes``: lower the quality first, then the size."""
    if image.shape[1] > max_width:
        scale = max_width / image.shape[1]
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    while True:
        for q in range(quality, 34, -10):
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, q])
            if ok and len(buf) <= max_bytes:
                return buf.tobytes()
        if image.shape[1] <= 64:
            return buf.tobytes()
        image = cv2.resize(image, None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA)
