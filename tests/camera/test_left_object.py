"""The left-object (dumping) check on real clips and on small synthetic scenes."""

from __future__ import annotations

from datetime import UTC, datetime

import cv2
import numpy as np
import pytest

from devtools.camera.evaluation import ObjectSequence, evaluate_objects, loose_match
from edge.camera import CameraWorker
from edge.camera.events import AlertKind
from edge.camera.host import to_contract_alert
from edge.camera.left_object import LeftObjectDetector
from firmware_config.camera import DUMPING_REMINDER_TEXT, CameraConfig, DumpingSettings

from .conftest import SHARED, VIDEO, need, noisy_background, with_noise

OBJECTS = SHARED / "data" / "objects"
WHOLE_FRAME = [[0, 0], [1, 0], [1, 1], [0, 1]]
JPEG = b"\xff\xd8\xff"


def dumping_camera(dwell_s: float = 3.0) -> CameraConfig:
    return CameraConfig(
        id="point-1",
        source="file.avi",
        checks=["dumping"],
        zones=[{"name": "rubbish_point", "polygon": WHOLE_FRAME, "dumping": True}],
        dumping={"dwell_s": dwell_s},
    )


def test_aboda_bag_one_alert_both_snapshots_one_reminder() -> None:
    root = need(OBJECTS / "aboda-video4")
    seq = ObjectSequence.open(root)
    alerts, reminders = [], []
    worker = CameraWorker(
        dumping_camera(),
        alerts.append,
        lambda camera, kind: reminders.append((camera, kind)) or True,
        clock=lambda: datetime(2026, 12, 1, 3, 0, tzinfo=UTC),  # 10:00 in Hanoi
    )
    for n, image in seq.frames():
        worker.handle_frame(image, n / seq.fps)
    assert [a.kind for a in alerts] == [AlertKind.dumping]
    alert = alerts[0]
    assert loose_match(alert.boxes[0][:4], seq.objects[0].box)
    assert alert.snapshot_jpeg.startswith(JPEG) and alert.before_jpeg is not None
    assert alert.before_jpeg.startswith(JPEG) and alert.before_jpeg != alert.snapshot_jpeg
    before = cv2.imdecode(np.frombuffer(alert.before_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert before.shape[:2] == (480, 720)
    assert reminders == [("point-1", "dumping")]
    assert worker.config.reminders["dumping"].text == DUMPING_REMINDER_TEXT
    wire = to_contract_alert("node-1", alert)
    assert wire.kind == "dumping" and wire.before_jpeg_b64 and wire.snapshot_jpeg_b64


def test_reminder_waits_in_quiet_hours() -> None:
    """The dumping reminder follows the camera's quiet hours, as the helmet one does."""
    from edge.camera.schedule import ReminderGate

    cfg = CameraConfig.model_validate(
        {**dumping_camera().model_dump(), "quiet_hours": [{"start": "21:00", "end": "06:00"}]}
    )
    asked: list[str] = []
    gate = ReminderGate(cfg, lambda c, k: asked.append(k) or True)
    night = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)  # 23:00 in Hanoi
    day = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    assert not gate.maybe_remind("dumping", 0.0, night)
    assert gate.maybe_remind("dumping", 1.0, day)
    assert not gate.maybe_remind("dumping", 2.0, day)  # cooldowns.reminder_s
    assert asked == ["dumping"]


@pytest.mark.parametrize("name", ["aboda-video4", "hall-monitor-briefcase", "plaza-red-cup"])
def test_no_alert_but_the_left_objects(name: str) -> None:
    """People walking past (and the monitor carried away in the hall) raise nothing; each
    report is one of the labelled objects, found once."""
    score = evaluate_objects([need(OBJECTS / name)], dwell_s=3.0)
    prf = score.per_sequence[name]
    assert prf.fp == 0, [d.as_dict() for d in score.detections]
    assert prf.fn == 0


STREET_CLIPS = ["thai_campus_motorbike_test2.mp4", "thai_campus_motorbike_test3.mp4"]


@pytest.mark.parametrize("clip", STREET_CLIPS)
def test_street_clips_raise_no_dumping(clip: str) -> None:
    """Riders and walkers pass (a hand-held camera: the view moves): nothing is left."""
    cap = cv2.VideoCapture(str(need(VIDEO / clip)))
    detector = LeftObjectDetector(DumpingSettings(dwell_s=2.0))
    reports, n = [], 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        n += 1
        reports += detector.update(image, n / 29.97)
    assert n > 100 and reports == []


def test_cup_picked_up_before_its_time_raises_nothing() -> None:
    """At a dwell of 10 s the cup that lies 8.7 s (frames 1885-2016) raises nothing; the
    four that lie 24-35 s are each reported once."""
    root = need(OBJECTS / "plaza-red-cup")
    score = evaluate_objects([root], dwell_s=10.0)
    seq = ObjectSequence.open(root)
    short = seq.objects[3]
    assert (short.removed_frame - short.placed_frame) / seq.fps < 10
    assert not any(loose_match(d.box, short.box) for d in score.detections)
    assert sum(d.matched for d in score.detections) == 4 and len(score.detections) == 4


def synthetic(frames: int, put: int, take: int | None, fps: float = 10.0):
    """A grey scene; a textured box is carried in, put down at ``put``, taken at ``take``."""
    rng = np.random.default_rng(3)
    bg = noisy_background()
    obj = np.kron(rng.integers(180, 250, (3, 3), dtype=np.uint8), np.ones((6, 6), np.uint8))
    for i in range(frames):
        f = bg.copy()
        carried = i < put
        x = 20 + 8 * i if carried else 20 + 8 * put
        if (take is None or i < take) and x < 280:
            f[150:168, x : x + 18] = obj
        yield i, with_noise(f, rng), i / fps


def run(frames, dwell_s: float = 3.0) -> list:
    detector = LeftObjectDetector(DumpingSettings(dwell_s=dwell_s))
    found = []
    for _i, image, t in frames:
        found += detector.update(image, t)
    return found


def test_synthetic_object_left_is_reported_once() -> None:
    found = run(synthetic(120, put=15, take=None))
    assert len(found) == 1
    x1, y1, x2, y2 = found[0].box
    assert abs(x1 - 140) <= 6 and abs(y1 - 150) <= 6 and found[0].before_jpeg


def test_synthetic_object_taken_away_raises_nothing() -> None:
    assert run(synthetic(120, put=15, take=15 + 25)) == []


def test_whole_scene_dimming_is_not_an_object() -> None:
    """The light drops to 65% and comes back: no object, and no candidate left timing."""
    rng = np.random.default_rng(4)
    bg = noisy_background().astype(np.float32)
    detector = LeftObjectDetector(DumpingSettings(dwell_s=2.0))
    found = []
    for i in range(150):
        gain = 0.65 if 40 <= i < 100 else 1.0
        frame = with_noise(np.clip(bg * gain, 0, 255).astype(np.uint8), rng)
        found += detector.update(frame, i / 10)
    assert found == [] and detector.candidates == 0


def test_config_needs_a_dumping_zone() -> None:
    with pytest.raises(ValueError, match="dumping needs a zone"):
        CameraConfig(id="c", source="x.mp4", checks=["dumping"])
    assert dumping_camera().dumping.dwell_s == 3.0
    assert DumpingSettings().dwell_s == 60.0
