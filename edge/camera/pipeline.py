"""Per-frame processing of one camera, without threads: motion → helmet check → alerts.

``CameraPipeline.process(frame, t)`` is pure with respect to the outside world: it returns the
alerts to send and keeps only its own state (background, tracks, cooldowns), so tests and
benchmarks can drive it frame by frame from a file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import cv2
import numpy as np

from edge.camera.events import AlertBox, AlertKind, CameraAlert, draw_boxes, encode_jpeg
from edge.camera.geometry import Box, expand_box, merge_overlapping
from edge.camera.helmet import Detection, HelmetDetector
from edge.camera.left_object import LeftObject, LeftObjectDetector
from edge.camera.motion import MotionDetector, MotionResult
from edge.camera.recheck import load_recheck
from edge.camera.tracker import IoUTracker, Track
from firmware_config.camera import CameraConfig

log = logging.getLogger(__name__)

KIND_NO_HELMET = AlertKind.no_helmet
KIND_MOTION_IN_ZONE = AlertKind.motion_in_zone
LEFT_OBJECT_LABEL = "left_object"


def load_helmet_detector(config: CameraConfig) -> HelmetDetector | None:
    """The camera's model, or None (motion only) when none is configured or it fails to load."""
    settings = config.helmet
    if "helmet" not in config.checks:
        return None
    if settings.model is None:
        log.warning("camera %s: no helmet model configured; running motion only", config.id)
        return None
    try:
        # helmet second stage (edge/camera/recheck.py), only when weights are configured
        recheck = load_recheck(settings.recheck, config.id)
        detector = HelmetDetector(
            settings.model,
            input_size=settings.input_size,
            runtime=settings.runtime,
            threads=settings.threads,
            confidence=settings.confidence,
            nms_iou=settings.nms_iou,
            class_agnostic=settings.class_agnostic_nms,
            lean_memory=settings.lean_memory,
            recheck=recheck,
        )
    except Exception as exc:  # a bad model must not stop the camera: fall back to motion
        log.error("camera %s: helmet model unusable (%s); running motion only", config.id, exc)
        return None
    log.info("camera %s: helmet check with %s (%s)", config.id, settings.model, settings.runtime)
    return detector


def square_region(box: Box, side: int, width: int, height: int) -> Box:
    """Grow a box to at least ``side``×``side`` around its centre, shifted inside the frame.

    A crop smaller than the model input would be upscaled, which invents detail and false
    heads; at least 1:1 keeps heads at or above the size they have at native resolution.
    """
    x1, y1, x2, y2 = box
    w, h = max(x2 - x1, min(side, width)), max(y2 - y1, min(side, height))
    cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
    nx1 = min(max(0, cx - w // 2), width - w)
    ny1 = min(max(0, cy - h // 2), height - h)
    return (nx1, ny1, nx1 + w, ny1 + h)


class CameraPipeline:
    """Motion gating, helmet detection, tracking, confirmation and cooldowns for one camera."""

    def __init__(
        self,
        config: CameraConfig,
        detector: HelmetDetector | None = None,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        load_model: bool = True,
    ) -> None:
        self.config = config
        self.motion = MotionDetector(config.motion, config.masks, config.zones)
        if detector is None and load_model:
            detector = load_helmet_detector(config)
        self.helmet = detector if "helmet" in config.checks else None
        self._person_detector = detector
        h = config.helmet
        self.tracker = IoUTracker(
            iou_threshold=h.track_iou,
            max_age_s=h.track_max_age_s,
            alert_confidence=h.alert_confidence,
        )
        self.left_objects: LeftObjectDetector | None = None
        if "dumping" in config.checks:
            self.left_objects = LeftObjectDetector(
                config.dumping,
                [z.polygon for z in config.zones if z.dumping],
                self._person_in if self._person_detector is not None else None,
                config.snapshot.max_width,
            )
        self._wall_clock = wall_clock
        self._last_model_run = -np.inf
        self._last_alert: dict[str, float] = {}
        self.model_runs = 0
        self.last_motion: MotionResult | None = None
        self.last_detections: list[Detection] = []

    # -- helmet ------------------------------------------------------------------------------

    def regions_for(self, boxes: list[Box], width: int, height: int) -> list[Box] | None:
        """Crops around motion if they cost no more model runs than allowed, else None."""
        settings = self.config.helmet
        if not settings.use_regions or not boxes:
            return None
        grown = [expand_box(b, settings.region_margin, width, height) for b in boxes]
        side = settings.input_size
        regions = merge_overlapping(square_region(b, side, width, height) for b in grown)
        if len(regions) > settings.max_regions:
            return None
        area = sum((r[2] - r[0]) * (r[3] - r[1]) for r in regions)
        return None if area >= width * height else regions

    def _detect_heads(self, frame: np.ndarray, boxes: list[Box]) -> list[Detection]:
        assert self.helmet is not None
        h, w = frame.shape[:2]
        regions = self.regions_for(boxes, w, h)
        self.model_runs += len(regions) if regions else 1
        if regions:
            return self.helmet.detect_regions(frame, regions)
        return self.helmet.detect(frame)

    def _helmet_alerts(
        self, frame: np.ndarray, t: float, motion: MotionResult
    ) -> list[CameraAlert]:
        settings = self.config.helmet
        due = t - self._last_model_run >= 1.0 / settings.max_rate_hz
        if not (motion.active and due):
            self.tracker.expire(t)
            return []
        self._last_model_run = t
        dets = self._detect_heads(frame, motion.boxes)
        self.last_detections = dets
        alerts: list[CameraAlert] = []
        for track in self.tracker.update(dets, t):
            if self._track_due(track, t) and self._camera_due(KIND_NO_HELMET, t):
                track.alerted_at = t
                self._last_alert[KIND_NO_HELMET] = t
                alerts.append(self._no_helmet_alert(frame, track, dets))
        return alerts

    def _track_due(self, track: Track, t: float) -> bool:
        if not track.violates(self.config.helmet.confirm_hits):
            return False
        last = track.alerted_at
        return last is None or t - last >= self.config.cooldowns.per_track_s

    def _camera_due(self, kind: str, t: float) -> bool:
        last = self._last_alert.get(kind)
        return last is None or t - last >= self.config.cooldowns.per_camera_s

    def _no_helmet_alert(
        self, frame: np.ndarray, track: Track, dets: list[Detection]
    ) -> CameraAlert:
        boxes: list[AlertBox] = [
            (*(int(v) for v in d.box), d.label, round(d.confidence, 3)) for d in dets
        ]
        return self._alert(
            frame, KIND_NO_HELMET, track.best_without, boxes, {"track": str(track.id)}
        )

    # -- zones -------------------------------------------------------------------------------

    def _zone_alerts(self, frame: np.ndarray, t: float, motion: MotionResult) -> list[CameraAlert]:
        if "motion_in_zone" not in self.config.checks or not motion.zones:
            return []
        if not self._camera_due(KIND_MOTION_IN_ZONE, t):
            return []
        self._last_alert[KIND_MOTION_IN_ZONE] = t
        boxes: list[AlertBox] = [(*b, "motion", 1.0) for b in motion.boxes]
        detail = {"zones": ",".join(motion.zones)}
        return [self._alert(frame, KIND_MOTION_IN_ZONE, 1.0, boxes, detail)]

    # -- dumping -----------------------------------------------------------------------------

    def _person_in(self, frame: np.ndarray, box: Box) -> bool:
        """A head in or just above the box: a person keeping still, not a thing left."""
        detector = self._person_detector
        assert detector is not None
        h, w = frame.shape[:2]
        x1, y1, x2, y2 = expand_box(box, 0.5, w, h)
        region = square_region((x1, y1, x2, y2), detector.input_size, w, h)
        self.model_runs += 1
        return any(
            x1 <= (d.box[0] + d.box[2]) / 2 <= x2 and y1 <= (d.box[1] + d.box[3]) / 2 <= y2
            for d in detector.detect_regions(frame, [region])
        )

    def _dumping_alerts(self, frame: np.ndarray, t: float) -> list[CameraAlert]:
        if self.left_objects is None:
            return []
        return [self._dumping_alert(frame, found) for found in self.left_objects.update(frame, t)]

    def _dumping_alert(self, frame: np.ndarray, found: LeftObject) -> CameraAlert:
        """One alert per object, with the scene before it came and the scene now."""
        boxes: list[AlertBox] = [(*found.box, LEFT_OBJECT_LABEL, found.confidence)]
        alert = self._alert(
            frame,
            AlertKind.dumping,
            found.confidence,
            boxes,
            {"rested_s": f"{found.reported_at - found.rested_at:.1f}"},
        )
        alert.before_jpeg = self._before_snapshot(found, frame.shape[1])
        return alert

    def _before_snapshot(self, found: LeftObject, frame_width: int) -> bytes | None:
        """The remembered 'before' frame with the object's place drawn, size-capped."""
        if found.before_jpeg is None:
            return None
        image = cv2.imdecode(np.frombuffer(found.before_jpeg, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            return None
        k = image.shape[1] / frame_width
        x1, y1, x2, y2 = (round(v * k) for v in found.box)
        snap = self.config.snapshot
        drawn = draw_boxes(image, [(x1, y1, x2, y2, LEFT_OBJECT_LABEL, found.confidence)])
        return encode_jpeg(drawn, snap.max_bytes, snap.max_width, snap.quality)

    # -- common ------------------------------------------------------------------------------

    def _alert(
        self,
        frame: np.ndarray,
        kind: str,
        conf: float,
        boxes: list[AlertBox],
        detail: dict[str, str],
    ) -> CameraAlert:
        snap = self.config.snapshot
        jpeg = encode_jpeg(draw_boxes(frame, boxes), snap.max_bytes, snap.max_width, snap.quality)
        return CameraAlert(
            camera=self.config.id,
            kind=kind,
            confidence=float(conf),
            boxes=boxes,
            snapshot_jpeg=jpeg,
            at=self._wall_clock(),
            detail=detail,
        )

    def process(self, frame: np.ndarray, t: float) -> list[CameraAlert]:
        """Analyse one BGR frame taken at monotonic time ``t`` (seconds); return new alerts."""
        motion = self.motion.detect(frame, t)
        self.last_motion = motion
        alerts = self._zone_alerts(frame, t, motion)
        if self.helmet is not None:
            alerts += self._helmet_alerts(frame, t, motion)
        alerts += self._dumping_alerts(frame, t)
        return alerts
