"""Frame sources: RTSP/HTTP URLs, USB indexes and video files (looped, paced for simulation).

The worker owns reconnection; a source only opens, reads and closes, and raises
``SourceError`` with a readable reason when it cannot deliver a frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from firmware_config.camera import CameraConfig


class SourceError(RuntimeError):
    """The source cannot be opened or stopped delivering frames."""


class FrameSource(Protocol):
    """What the worker needs from a source."""

    def open(self) -> None: ...
    def read(self) -> np.ndarray: ...
    def close(self) -> None: ...


def is_stream(source: str | int) -> bool:
    return isinstance(source, str) and "://" in source


class OpenCVSource:
    """``cv2.VideoCapture`` behind the ``FrameSource`` protocol.

    A file is replayed in a loop at its own frame rate (sleeping between frames), so a file
    camera behaves like a live one for demos and simulations; set ``loop=False`` to stop at
    the end instead.
    """

    def __init__(
        self,
        source: str | int,
        loop: bool = True,
        read_timeout_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source = source
        self.loop = loop
        self.read_timeout_s = read_timeout_s
        self._sleep = sleep
        self._cap: cv2.VideoCapture | None = None
        self._is_file = isinstance(source, str) and not is_stream(source)
        self._period = 0.0
        self._next_due = 0.0

    def open(self) -> None:
        if self._is_file and not Path(str(self.source)).is_file():
            raise SourceError(f"no such video file: {self.source}")
        if is_stream(self.source):
            timeout_ms = int(self.read_timeout_s * 1000)
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                timeout_ms,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                timeout_ms,
            ]
            cap = cv2.VideoCapture(str(self.source), cv2.CAP_FFMPEG, params)
        else:
            cap = cv2.VideoCapture(self.source)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self.source}")
        self._cap = cap
        if self._is_file:
            fps = cap.get(cv2.CAP_PROP_FPS)
            self._period = 1.0 / fps if fps and fps > 0 else 1.0 / 25
            self._next_due = time.monotonic()

    def _pace(self) -> None:
        """Hold a file back to its own frame rate, as a live camera would deliver it."""
        now = time.monotonic()
        if self._next_due > now:
            self._sleep(self._next_due - now)
        self._next_due = max(self._next_due + self._period, now - self._period)

    def read(self) -> np.ndarray:
        if self._cap is None:
            raise SourceError("source not open")
        ok, frame = self._cap.read()
        if not ok and self._is_file and self.loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
        if not ok or frame is None:
            raise SourceError(f"no frame from {self.source}")
        if self._is_file:
            self._pace()
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def source_for(config: CameraConfig) -> FrameSource:
    """The default source factory used by the worker."""
    return OpenCVSource(config.source, config.loop, config.reconnect.read_timeout_s)


class Backoff:
    """Exponential delays between reconnection attempts, reset after a success."""

    def __init__(self, initial_s: float, max_s: float, factor: float = 2.0) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.factor = factor
        self._next = initial_s

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self.max_s, self._next * self.factor)
        return delay

    def reset(self) -> None:
        self._next = self.initial_s
