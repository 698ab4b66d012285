"""Motion detector: F1 floor on CDnet highway, masks, zones, lighting, minimum duration."""

from __future__ import annotations

import numpy as np

from devtools.camera.evaluation import evaluate_motion
from edge.camera.motion import MotionDetector
from firmware_config.camera import MotionSettings, ZoneConfig

from .conftest import CDNET, need, scene, square_x

FPS = 30.0


def run(det: MotionDetector, frames: list[np.ndarray]):
    return [det.detect(f, i / FPS) for i, f in enumerate(frames)]


def test_cdnet_highway_f1_floor() -> None:
    score = evaluate_motion(need(CDNET))
    assert score.pixel.f1 >= 0.80, score.pixel.as_dict()
    assert score.frame.recall >= 0.95


def test_moving_square_is_boxed_tightly() -> None:
    frames = scene(50, start=15)
    results = run(MotionDetector(), frames)
    last = results[-1]
    assert last.active and len(last.boxes) == 1
    x1, y1, x2, y2 = last.boxes[0]
    x = square_x(49, 15)
    # the box covers the square and at most its trail of one or two frames
    assert abs(y1 - 100) <= 2 and abs(y2 - 124) <= 2
    assert x1 <= x + 1 and x2 >= x + 23 and (x2 - x1) <= 24 + 12


def test_static_noisy_scene_has_no_motion() -> None:
    rng_frames = scene(40, square=0)
    assert not any(r.boxes for r in run(MotionDetector(), rng_frames))


def test_ignore_mask_excludes_motion_inside_it() -> None:
    frames = scene(50, start=15)
    band = [[0, 90], [319, 90], [319, 130], [0, 130]]  # pixel polygon over the square's path
    results = run(MotionDetector(masks=[band]), frames)
    assert not any(r.boxes for r in results)
    other = [[0, 0], [319, 0], [319, 40], [0, 40]]  # a mask elsewhere changes nothing
    assert run(MotionDetector(masks=[other]), frames)[-1].boxes


def test_zones_report_only_where_motion_is() -> None:
    zones = [
        ZoneConfig(name="road", polygon=[(0, 0.35), (1, 0.35), (1, 0.6), (0, 0.6)], min_area=50),
        ZoneConfig(name="sky", polygon=[(0, 0), (1, 0), (1, 0.2), (0, 0.2)], min_area=50),
    ]
    results = run(MotionDetector(zones=zones), scene(50, start=15))
    assert results[-1].zones == ["road"]
    assert not any("sky" in r.zones for r in results)


def test_global_lighting_change_is_not_motion() -> None:
    frames = scene(30, square=0)
    brighter = [np.clip(f.astype(np.int16) + 70, 0, 255).astype(np.uint8) for f in frames[:10]]
    results = run(MotionDetector(), frames + brighter)
    # the global gain takes most of a +70 step in; what is left is below the rule's share
    assert not any(r.boxes for r in results[30:])
    lamp = np.zeros(frames[0].shape, np.int16)
    lamp[:, : lamp.shape[1] // 2], lamp[:, lamp.shape[1] // 2 :] = 90, -45  # one side lit
    lit = [np.clip(f.astype(np.int16) + lamp, 0, 255).astype(np.uint8) for f in frames[:10]]
    results = run(MotionDetector(), frames + lit)
    assert any(r.lighting_change for r in results[30:])  # no single gain explains this
    assert not any(r.boxes for r in results[30:])


def test_minimum_duration() -> None:
    frames = scene(30, square=0)
    blip = scene(1)[0]  # one frame with a square, then the static scene again
    settings = MotionSettings(min_duration_s=0.2)
    results = run(MotionDetector(settings), frames + [blip] + frames[:5])
    assert not any(r.boxes for r in results)
    results = run(MotionDetector(settings), frames + scene(20))
    first = next(i for i, r in enumerate(results) if r.boxes)
    assert 30 + int(0.2 * FPS) <= first <= 30 + int(0.2 * FPS) + 2


def test_ghost_of_an_object_present_at_start_is_absorbed() -> None:
    settings = MotionSettings(absorb_frames=60, warmup_frames=0)
    frames = scene(1) + scene(150, square=0)  # learnt with the square, which then leaves
    results = run(MotionDetector(settings), frames)
    assert results[20].boxes  # the ghost is seen at first…
    assert not any(r.boxes for r in results[80:])  # …and learnt away
