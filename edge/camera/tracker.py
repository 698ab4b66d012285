"""A small IoU tracker so one rider becomes one track, hence one alert.

The helmet model runs a few times a second, so a head moves a lot between runs; matching is
greedy by IoU first, then, for what is left, by centre distance relative to the head size.
Each track keeps per-class hit counts so a violation is confirmed only by a majority of
confident 'Without Helmet' hits, not by one flicker.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from edge.camera.geometry import iou_matrix
from edge.camera.helmet import WITHOUT_HELMET, Detection


@dataclass(slots=True)
class Track:
    """One head followed across model runs."""

    id: int
    detection: Detection
    first_t: float
    last_t: float
    hits: dict[int, int] = field(default_factory=dict)
    confident_without: int = 0
    best_without: float = 0.0
    alerted_at: float | None = None

    def add(self, det: Detection, t: float, alert_confidence: float) -> None:
        """Record a new sighting of this head."""
        self.detection = det
        self.last_t = t
        self.hits[det.cls] = self.hits.get(det.cls, 0) + 1
        if det.cls == WITHOUT_HELMET and det.confidence >= alert_confidence:
            self.confident_without += 1
            self.best_without = max(self.best_without, det.confidence)

    def violates(self, confirm_hits: int) -> bool:
        """Enough confident 'without' hits, and more 'without' than 'with' overall."""
        without = self.hits.get(WITHOUT_HELMET, 0)
        others = sum(n for c, n in self.hits.items() if c != WITHOUT_HELMET)
        return self.confident_without >= confirm_hits and without > others


def _centres(boxes: np.ndarray) -> np.ndarray:
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)


class IoUTracker:
    """Greedy IoU (then distance) association; tracks die after ``max_age_s`` unseen."""

    def __init__(
        self,
        iou_threshold: float = 0.1,
        max_age_s: float = 2.0,
        max_jump: float = 1.5,
        duplicate_iou: float = 0.5,
        alert_confidence: float = 0.5,
    ) -> None:
        self.iou_threshold = iou_threshold
        self.max_age_s = max_age_s
        self.max_jump = max_jump
        self.duplicate_iou = duplicate_iou
        self.alert_confidence = alert_confidence
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)

    def _associate(self, dets: list[Detection]) -> dict[int, int]:
        """Detection index → track index."""
        if not self.tracks or not dets:
            return {}
        tb = np.array([tr.detection.box for tr in self.tracks], np.float32)
        db = np.array([d.box for d in dets], np.float32)
        ious = iou_matrix(tb, db)
        sizes = np.maximum(tb[:, 2] - tb[:, 0], tb[:, 3] - tb[:, 1])
        dist = np.linalg.norm(_centres(tb)[:, None, :] - _centres(db)[None, :, :], axis=2)
        near = dist <= self.max_jump * sizes[:, None]
        # IoU matches rank above distance-only matches; both need to pass their gate.
        affinity = np.where(ious >= self.iou_threshold, 1.0 + ious, 0.0)
        affinity = np.where((affinity == 0) & near, 1.0 - dist / (dist.max() + 1e-9), affinity)
        pairs: dict[int, int] = {}
        while affinity.size and affinity.max() > 0:
            ti, di = np.unravel_index(int(affinity.argmax()), affinity.shape)
            pairs[int(di)] = int(ti)
            affinity[ti, :] = 0
            affinity[:, di] = 0
        return pairs

    def update(self, dets: list[Detection], t: float) -> list[Track]:
        """Feed one model run's detections; returns the tracks seen in it."""
        self.tracks = [tr for tr in self.tracks if t - tr.last_t <= self.max_age_s]
        pairs = self._associate(dets)
        seen: list[Track] = []
        for di, det in enumerate(dets):
            if di in pairs:
                track = self.tracks[pairs[di]]
                track.add(det, t, self.alert_confidence)
                seen.append(track)
                continue
            if any(
                iou_matrix(np.array([det.box]), np.array([s.detection.box]))[0, 0]
                > self.duplicate_iou
                for s in seen
            ):
                continue  # the same head reported twice (other class): not a new rider
            track = Track(next(self._ids), det, t, t)
            track.add(det, t, self.alert_confidence)
            self.tracks.append(track)
            seen.append(track)
        return seen

    def expire(self, t: float) -> None:
        """Drop tracks not seen for ``max_age_s`` (called on frames without a model run)."""
        self.tracks = [tr for tr in self.tracks if t - tr.last_t <= self.max_age_s]
