"""Worker isolation, reconnection with backoff, reminder gating."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime

import numpy as np

from edge.camera import CameraAlert, CameraWorker
from edge.camera.capture import Backoff
from edge.camera.schedule import ReminderGate
from firmware_config.camera import CameraConfig

from .conftest import noisy_background


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SyntheticSource:
    """An endless static scene, as fast as asked."""

    def __init__(self, *_args) -> None:
        self.frame = np.dstack([noisy_background()] * 3)

    def open(self) -> None: ...

    def read(self) -> np.ndarray:
        time.sleep(0.005)
        return self.frame

    def close(self) -> None: ...


class ExplodingSource(SyntheticSource):
    """Opens fine, then raises on every read."""

    def read(self) -> np.ndarray:
        raise RuntimeError("sensor on fire")


def wait_for(pred, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def motion_only(cam_id: str, source: str, **kw) -> CameraConfig:
    return CameraConfig(id=cam_id, source=source, checks=[], fps=30, **kw)


def test_dead_url_retries_and_others_keep_running() -> None:
    fast = {"initial_s": 0.1, "max_s": 0.4}
    dead = CameraWorker(
        motion_only("dead", f"rtsp://127.0.0.1:{closed_port()}/x", reconnect=fast),
        lambda a: None,
        lambda c, k: True,
    )
    good = CameraWorker(
        motion_only("good", "synthetic"),
        lambda a: None,
        lambda c, k: True,
        source_factory=SyntheticSource,
    )
    dead.start()
    good.start()
    try:
        assert wait_for(lambda: dead.stats().reconnects >= 3)
        assert wait_for(lambda: good.stats().frames >= 20)
        s = dead.stats()
        assert s.state in {"reconnecting", "connecting"} and "cannot open" in s.last_error
        assert s.frames == 0
        assert good.stats().state == "running" and good.stats().last_error is None
    finally:
        dead.stop()
        good.stop()
    assert dead.stats().state == "stopped"


def test_raising_source_does_not_take_down_another_worker() -> None:
    bad = CameraWorker(
        motion_only("bad", "x", reconnect={"initial_s": 0.05, "max_s": 0.1}),
        lambda a: None,
        lambda c, k: True,
        source_factory=ExplodingSource,
    )
    good = CameraWorker(
        motion_only("good", "y"), lambda a: None, lambda c, k: True, source_factory=SyntheticSource
    )
    bad.start()
    good.start()
    try:
        assert wait_for(lambda: bad.stats().reconnects >= 3)
        before = good.stats().frames
        assert wait_for(lambda: good.stats().frames > before + 10)
        assert "sensor on fire" in bad.stats().last_error
        assert bad._thread is not None and bad._thread.is_alive()
    finally:
        bad.stop()
        good.stop()


def test_failing_alert_callback_is_contained() -> None:
    cfg = CameraConfig(
        id="zone",
        source="x",
        checks=["motion_in_zone"],
        zones=[{"name": "all", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]], "min_area": 20}],
        cooldowns={"per_camera_s": 0},
    )

    def broken(alert: CameraAlert) -> None:
        raise ValueError("outbox full")

    worker = CameraWorker(cfg, broken, lambda c, k: True)
    bg = np.dstack([noisy_background()] * 3)
    for i in range(20):
        worker.handle_frame(bg, i / 15)
    moving = bg.copy()
    for i in range(20, 30):
        frame = moving.copy()
        frame[100:130, 10 + 6 * i : 40 + 6 * i] = 255
        worker.handle_frame(frame, i / 15)
    assert "outbox full" in worker.stats().last_error
    assert worker.stats().frames == 30


def test_reminder_gate_quiet_hours_and_cooldown() -> None:
    calls: list[str] = []
    cfg = CameraConfig(
        id="cam",
        source="x",
        quiet_hours=[{"start": "22:00", "end": "06:00"}],
        cooldowns={"reminder_s": 60},
    )
    gate = ReminderGate(cfg, lambda c, k: calls.append(k) or True)
    night = datetime(2025, 1, 1, 16, 0, tzinfo=UTC)  # 23:00 in Hanoi
    day = datetime(2025, 1, 1, 3, 0, tzinfo=UTC)  # 10:00 in Hanoi
    assert not gate.maybe_remind("no_helmet", 0.0, night)
    assert gate.maybe_remind("no_helmet", 1.0, day)
    assert not gate.maybe_remind("no_helmet", 30.0, day)  # cooldown
    assert gate.maybe_remind("no_helmet", 62.0, day)
    assert not gate.maybe_remind("motion_in_zone", 100.0, day)  # no reminder configured
    assert calls == ["no_helmet", "no_helmet"]


def test_refused_reminder_does_not_start_cooldown() -> None:
    answers = iter([False, True])
    gate = ReminderGate(CameraConfig(id="c", source="x"), lambda c, k: next(answers))
    day = datetime(2025, 1, 1, 3, 0, tzinfo=UTC)
    assert not gate.maybe_remind("no_helmet", 0.0, day)
    assert gate.maybe_remind("no_helmet", 1.0, day)


def test_backoff_grows_and_resets() -> None:
    b = Backoff(1, 8)
    assert [b.next_delay() for _ in range(5)] == [1, 2, 4, 8, 8]
    b.reset()
    assert b.next_delay() == 1
