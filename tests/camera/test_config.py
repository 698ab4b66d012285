"""CameraConfig: valid settings load, wrong ones fail naming the field."""

from __future__ import annotations

from datetime import time

import pytest
import yaml
from pydantic import ValidationError

from firmware_config.camera import CameraConfig, QuietHours, polygon_to_pixels

EXAMPLE = """
id: gate-1
source: rtsp://192.168.1.20:554/stream1
fps: 10
checks: [helmet, motion_in_zone]
masks:
  - [[0, 0], [0.3, 0], [0.3, 0.2], [0, 0.2]]
zones:
  - name: school_gate
    polygon: [[400, 300], [900, 300], [900, 540], [400, 540]]
helmet:
  model: /opt/loaxa/models/helmet-yolov12m-320.onnx
  input_size: 320
quiet_hours:
  - {start: "21:30", end: "06:00"}
cooldowns: {per_camera_s: 30, reminder_s: 120}
reminders:
  no_helmet: {text: "Xin vui lòng đội mũ bảo hiểm."}
"""


def test_example_loads() -> None:
    cfg = CameraConfig.model_validate(yaml.safe_load(EXAMPLE))
    assert cfg.zones[0].name == "school_gate"
    assert cfg.quiet_hours[0].contains(time(23, 0)) and not cfg.quiet_hours[0].contains(time(12))
    assert cfg.helmet.input_size == 320 and cfg.motion.threshold == 26


def test_usb_index_from_string() -> None:
    assert CameraConfig(id="usb", source="0").source == 0


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"fps": 0}, "fps"),
        ({"helmet": {"modle": "x.onnx"}}, "helmet.modle"),
        ({"masks": [[[0, 0], [1, 1]]]}, "masks"),
        ({"motion": {"threshold": 300}}, "motion.threshold"),
        ({"checks": ["helmet", "smoke"]}, "checks"),
        ({"id": "Bad Id"}, "id"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"quiet_hours": [{"start": "25:00", "end": "06:00"}]}, "quiet_hours.0.start"),
    ],
)
def test_wrong_setting_names_field(patch: dict, field: str) -> None:
    data = {"id": "cam", "source": "rtsp://x/y", **patch}
    with pytest.raises(ValidationError) as err:
        CameraConfig.model_validate(data)
    assert field in str(err.value)


def test_motion_in_zone_needs_a_zone() -> None:
    with pytest.raises(ValidationError, match="motion_in_zone needs at least one"):
        CameraConfig(id="cam", source="x.mp4", checks=["motion_in_zone"])


def test_quiet_hours_same_day_window() -> None:
    q = QuietHours(start=time(12), end=time(14))
    assert q.contains(time(13)) and not q.contains(time(14)) and not q.contains(time(2))


def test_polygon_units() -> None:
    assert polygon_to_pixels([(0, 0), (1, 0), (1, 1)], 321, 241) == [(0, 0), (320, 0), (320, 240)]
    assert polygon_to_pixels([(10, 5), (20, 5), (20, 9)], 320, 240) == [(10, 5), (20, 5), (20, 9)]
