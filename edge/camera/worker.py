"""One thread per camera: capture, frame-rate cap, pipeline, alert and reminder dispatch.

Isolation: everything a camera does runs inside its own thread and every failure (source,
model, callback) is caught, recorded in ``stats()`` and retried with backoff, so a broken
camera never stops the other cameras or the audio player.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from edge.camera.capture import Backoff, FrameSource, source_for
from edge.camera.events import CameraAlert
from edge.camera.pipeline import CameraPipeline
from edge.camera.schedule import ReminderGate
from firmware_config.camera import CameraConfig

log = logging.getLogger(__name__)


@dataclass(slots=True)
class WorkerStats:
    """A snapshot of one worker's health, for the agent's status report."""

    camera: str
    state: str
    fps: float
    frames: int
    alerts: int
    reminders: int
    reconnects: int
    model_runs: int
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CameraWorker:
    """Runs one camera in a daemon thread; see the module docstring for the guarantees."""

    def __init__(
        self,
        config: CameraConfig,
        on_alert: Callable[[CameraAlert], None],
        request_reminder: Callable[[str, str], bool],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        source_factory: Callable[[CameraConfig], FrameSource] = source_for,
        pipeline: CameraPipeline | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._on_alert = on_alert
        self._clock = clock
        self._source_factory = source_factory
        self._monotonic = monotonic
        self._pipeline = pipeline
        self._reminders = ReminderGate(config, request_reminder)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._state = "stopped"
        self._frames = 0
        self._alerts = 0
        self._reminded = 0
        self._reconnects = 0
        self._fps = 0.0
        self._window_start: float | None = None
        self._window_frames = 0
        self._last_error: str | None = None

    # -- public API ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._state = "starting"
        self._thread = threading.Thread(
            target=self._run, name=f"camera-{self.config.id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to finish and wait for it (a blocked stream read may outlast this)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._state = "stopped"

    def stats(self) -> WorkerStats:
        with self._lock:
            return WorkerStats(
                camera=self.config.id,
                state=self._state,
                fps=round(self._fps, 2),
                frames=self._frames,
                alerts=self._alerts,
                reminders=self._reminded,
                reconnects=self._reconnects,
                model_runs=self._pipeline.model_runs if self._pipeline else 0,
                last_error=self._last_error,
            )

    @property
    def pipeline(self) -> CameraPipeline:
        """The camera's pipeline, built on first use (loading the model takes a moment)."""
        if self._pipeline is None:
            self._pipeline = CameraPipeline(self.config, wall_clock=self._clock)
        return self._pipeline

    def handle_frame(self, frame: np.ndarray, t: float) -> list[CameraAlert]:
        """Process one frame and dispatch its alerts and reminders (what the thread does)."""
        alerts = self.pipeline.process(frame, t)
        for alert in alerts:
            self._dispatch(alert, t)
        with self._lock:
            self._frames += 1
            # frames counted over windows of at least 2 s: a mean of instantaneous rates
            # would be inflated by frames read back to back after a stall
            if self._window_start is None:
                self._window_start, self._window_frames = t, 0
            self._window_frames += 1
            if t - self._window_start >= 2.0:
                self._fps = (self._window_frames - 1) / (t - self._window_start)
                self._window_start, self._window_frames = t, 1
        return alerts

    # -- internals ---------------------------------------------------------------------------

    def _dispatch(self, alert: CameraAlert, t: float) -> None:
        """Hand the alert to the agent; a failing callback is logged, never fatal."""
        try:
            self._on_alert(alert)
            with self._lock:
                self._alerts += 1
        except Exception as exc:
            self._error(f"on_alert failed: {exc!r}")
        try:
            if self._reminders.maybe_remind(alert.kind, t, alert.at):
                with self._lock:
                    self._reminded += 1
        except Exception as exc:
            self._error(f"request_reminder failed: {exc!r}")

    def _error(self, message: str) -> None:
        log.warning("camera %s: %s", self.config.id, message)
        with self._lock:
            self._last_error = message

    def _set_state(self, state: str) -> None:
        with self._lock:
            self._state = state

    def _run(self) -> None:
        backoff = Backoff(
            self.config.reconnect.initial_s,
            self.config.reconnect.max_s,
            self.config.reconnect.factor,
        )
        try:
            _ = self.pipeline
        except Exception as exc:  # cannot even build the pipeline: report and stop this camera
            self._error(f"pipeline failed to start: {exc!r}")
            self._set_state("failed")
            return
        while not self._stop.is_set():
            source: FrameSource | None = None
            try:
                self._set_state("connecting")
                source = self._source_factory(self.config)
                source.open()
                self._set_state("running")
                self._stream(source, backoff)
            except Exception as exc:
                self._error(f"{type(exc).__name__}: {exc}")
            finally:
                if source is not None:
                    try:
                        source.close()
                    except Exception as exc:
                        self._error(f"close failed: {exc!r}")
            if self._stop.is_set():
                break
            delay = backoff.next_delay()
            with self._lock:
                self._reconnects += 1
                self._state = "reconnecting"
            log.info("camera %s: reconnecting in %.1fs", self.config.id, delay)
            self._stop.wait(delay)
            self.pipeline.motion.reset()
        self._set_state("stopped")

    def _stream(self, source: FrameSource, backoff: Backoff) -> None:
        """Read until stopped or the source fails; drop frames above the configured rate."""
        period = 1.0 / self.config.fps
        next_due = self._monotonic()
        while not self._stop.is_set():
            frame = source.read()
            backoff.reset()
            now = self._monotonic()
            if now < next_due:
                continue
            # at most one frame per period on average, and no catch-up burst after a stall
            next_due = max(next_due + period, now)
            self.handle_frame(frame, now)
