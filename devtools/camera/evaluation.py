"""Scoring of the motion detector (CDnet layout) and the helmet detector (YOLO labels).

Kept free of printing so the CLI, the tests and the benchmarks share one implementation.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.camera.geometry import boxes_mask, iou_matrix
from edge.camera.helmet import CLASS_NAMES, Detection, HelmetDetector
from edge.camera.left_object import LeftObjectDetector
from edge.camera.motion import MotionDetector, MotionResult
from firmware_config.camera import DumpingSettings

GT_MOVING, GT_SHADOW, GT_STATIC = 255, 50, 0
Progress = Callable[[int, int], None]


@dataclass(slots=True)
class PRF:
    """Counts and the precision / recall / F1 they give."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


@dataclass(slots=True)
class MotionScore:
    """CDnet result: pixel scores of box-filled masks, frame-level scores and speed."""

    frames: int
    seconds: float
    pixel: PRF
    frame: PRF

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class EvaluationError(Exception):
    """A folder cannot be evaluated; the message is one line, fit to print as is."""


_CDNET_INPUT = re.compile(r"^in(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)


@dataclass(slots=True)
class CdnetSequence:
    """A CDnet folder: ``input/inNNNNNN.jpg``, ``groundtruth/gtNNNNNN.png``, ROI, temporal ROI.

    Frame numbers are read from the file names: a subset may start anywhere (frames
    950-1050 of a longer sequence); the scored range is the temporal ROI within them.
    """

    root: Path
    first: int
    last: int
    roi: np.ndarray
    numbers: list[int]
    inputs: dict[int, Path]

    @property
    def count(self) -> int:
        return len(self.numbers)

    @classmethod
    def open(cls, root: Path) -> CdnetSequence:
        root = Path(root)
        folder = root / "input"
        if not folder.is_dir():
            raise EvaluationError(f"{root}: no input/ folder (not a CDnet sequence)")
        inputs = {
            int(m.group(1)): p
            for p in folder.iterdir()
            if (m := _CDNET_INPUT.match(p.name))
        }
        if not inputs:
            raise EvaluationError(f"{folder}: no inNNNNNN.jpg frames")
        numbers = sorted(inputs)
        first, last = cls._temporal_roi(root, numbers)
        roi = cv2.imread(str(root / "ROI.bmp"), cv2.IMREAD_GRAYSCALE)
        if roi is None:
            raise EvaluationError(f"{root}: ROI.bmp missing or unreadable")
        if not (root / "groundtruth").is_dir():
            raise EvaluationError(f"{root}: no groundtruth/ folder")
        return cls(root, first, last, roi > 0, numbers, inputs)

    @staticmethod
    def _temporal_roi(root: Path, numbers: list[int]) -> tuple[int, int]:
        """The scored frames: ``temporalROI.txt`` clipped to the frames present (all of
        them when the file is absent)."""
        path = root / "temporalROI.txt"
        if not path.exists():
            return numbers[0], numbers[-1]
        try:
            first, last = (int(v) for v in path.read_text().split()[:2])
        except ValueError:
            raise EvaluationError(f"{path}: expected two frame numbers") from None
        first, last = max(first, numbers[0]), min(last, numbers[-1])
        if first > last:
            raise EvaluationError(
                f"{path}: scored frames lie outside the frames present "
                f"({numbers[0]}-{numbers[-1]})"
            )
        return first, last

    def frame(self, n: int) -> np.ndarray:
        path = self.inputs.get(n)
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) if path else None
        if image is None:
            raise EvaluationError(f"{self.root}: frame {n} missing or unreadable")
        return image

    def truth(self, n: int) -> np.ndarray:
        path = self.root / "groundtruth" / f"gt{n:06d}.png"
        gt = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if gt is None:
            raise EvaluationError(f"{self.root}: ground truth of frame {n} missing or unreadable")
        return gt


def score_mask(pred: np.ndarray, gt: np.ndarray, roi: np.ndarray, acc: PRF) -> None:
    """Add one frame's pixel counts: only 0/50/255 inside the ROI are scored (CDnet rules)."""
    valid = roi & ((gt == GT_STATIC) | (gt == GT_SHADOW) | (gt == GT_MOVING))
    pos = gt == GT_MOVING
    hit = pred > 0
    acc.tp += int(np.count_nonzero(hit & pos & valid))
    acc.fp += int(np.count_nonzero(hit & ~pos & valid))
    acc.fn += int(np.count_nonzero(~hit & pos & valid))


class Mog2Boxes:
    """OpenCV MOG2 (defaults, shadows dropped) scored like ours: boxes of its blobs of at
    least 10 pixels (as in ``benchmarks/motion_compare.py``); the baseline of
    ``loaxa eval motion --compare-mog2``."""

    def __init__(self) -> None:
        self._mog2 = cv2.createBackgroundSubtractorMOG2()

    def detect(self, frame: np.ndarray, t: float) -> MotionResult:
        mask = cv2.threshold(self._mog2.apply(frame), 200, 255, cv2.THRESH_BINARY)[1]
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes = []
        for c in contours:
            if cv2.contourArea(c) >= 10:
                x, y, w, h = cv2.boundingRect(c)
                boxes.append((x, y, x + w, y + h))
        return MotionResult(boxes, mask, bool(boxes))


def evaluate_motion(
    root: Path,
    detector: MotionDetector | Mog2Boxes | None = None,
    fps: float = 30.0,
    dump_dir: Path | None = None,
    progress: Progress | None = None,
) -> MotionScore:
    """Run the detector over every frame; score the temporal ROI; time ``detect`` only."""
    seq = CdnetSequence.open(root)
    detector = detector or MotionDetector()
    if dump_dir is not None:
        dump_dir.mkdir(parents=True, exist_ok=True)
    pixel, frame_level, spent = PRF(), PRF(), 0.0
    for i, n in enumerate(seq.numbers, 1):
        image = seq.frame(n)
        start = time.perf_counter()
        result = detector.detect(image, n / fps)
        spent += time.perf_counter() - start
        if progress:
            progress(i, seq.count)
        if not seq.first <= n <= seq.last:
            continue
        h, w = image.shape
        pred = boxes_mask(result.boxes, w, h)
        gt = seq.truth(n)
        if gt.shape != (h, w):
            raise EvaluationError(f"{seq.root}: ground truth {n} is not the frame's size")
        score_mask(pred, gt, seq.roi, pixel)
        truth_moving = bool(np.any((gt == GT_MOVING) & seq.roi))
        frame_level.tp += int(truth_moving and result.active)
        frame_level.fp += int(result.active and not truth_moving)
        frame_level.fn += int(truth_moving and not result.active)
        if dump_dir is not None:
            cv2.imwrite(str(dump_dir / f"{n:06d}.png"), pred)
    return MotionScore(seq.count, spent, pixel, frame_level)


@dataclass(slots=True)
class HelmetScore:
    """Per-class scores at IoU ≥ 0.5 and the mean time per image."""

    images: int
    seconds: float
    per_class: dict[str, PRF] = field(default_factory=dict)

    @property
    def ms_per_image(self) -> float:
        return 1000 * self.seconds / self.images if self.images else 0.0


def read_yolo_labels(path: Path, width: int, height: int) -> list[tuple[int, np.ndarray]]:
    """YOLO text labels (normalised centre/size) → ``(class, [x1, y1, x2, y2])`` in pixels."""
    out: list[tuple[int, np.ndarray]] = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) < 5:
            continue
        c, cx, cy, bw, bh = int(parts[0]), *(float(v) for v in parts[1:5])
        box = np.array(
            [
                (cx - bw / 2) * width,
                (cy - bh / 2) * height,
                (cx + bw / 2) * width,
                (cy + bh / 2) * height,
            ],
            np.float32,
        )
        out.append((c, box))
    return out


def match_class(dets: list[Detection], truths: list[np.ndarray], acc: PRF, iou: float) -> None:
    """Greedy by confidence: each label box matches at most one detection of its class."""
    order = sorted(dets, key=lambda d: -d.confidence)
    if not truths:
        acc.fp += len(order)
        return
    gt = np.stack(truths)
    used = np.zeros(len(gt), bool)
    if order:
        ious = iou_matrix(np.array([d.box for d in order], np.float32), gt)
        for row in ious:
            row = np.where(used, -1.0, row)
            j = int(row.argmax())
            if row[j] >= iou:
                used[j] = True
                acc.tp += 1
            else:
                acc.fp += 1
    acc.fn += int((~used).sum())


def helmet_images(root: Path) -> Iterator[Path]:
    """Images of a YOLO-labelled folder (``images/`` and ``labels/`` with the same stems)."""
    folder = Path(root) / "images"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist")
    yield from sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def evaluate_helmet(
    root: Path,
    detector: HelmetDetector,
    iou: float = 0.5,
    on_image: Callable[[str, list[Detection]], None] | None = None,
    progress: Progress | None = None,
) -> HelmetScore:
    """Whole-image detection on every labelled image; time covers pre/post-processing."""
    paths = list(helmet_images(root))
    score = HelmetScore(len(paths), 0.0, {name: PRF() for name in CLASS_NAMES})
    for i, path in enumerate(paths, 1):
        image = cv2.imread(str(path))
        if image is None:
            raise FileNotFoundError(f"{path} unreadable")
        start = time.perf_counter()
        dets = detector.detect(image)
        score.seconds += time.perf_counter() - start
        h, w = image.shape[:2]
        labels = read_yolo_labels(Path(root) / "labels" / f"{path.stem}.txt", w, h)
        for cls, name in enumerate(CLASS_NAMES):
            match_class(
                [d for d in dets if d.cls == cls],
                [b for c, b in labels if c == cls],
                score.per_class[name],
                iou,
            )
        if on_image:
            on_image(path.name, dets)
        if progress:
            progress(i, len(paths))
    return score


# ------------------------------------------------------------------------------ left objects


@dataclass(slots=True)
class LabelledObject:
    """One entry of ``labels.json``'s ``left_objects`` (frames count from 1)."""

    box: tuple[int, int, int, int]
    placed_frame: int
    removed_frame: int | None


@dataclass(slots=True)
class ObjectSequence:
    """A folder in the layout of ``shared/data/objects``: ``labels.json`` with frames in
    ``input/`` (any image names, in name order) or one video file."""

    root: Path
    fps: float
    objects: list[LabelledObject]

    @classmethod
    def open(cls, root: Path) -> ObjectSequence:
        root = Path(root)
        labels_path = root / "labels.json"
        if not labels_path.is_file():
            raise EvaluationError(f"{root}: no labels.json")
        try:
            labels = json.loads(labels_path.read_text(encoding="utf-8"))
            objects = [
                LabelledObject(
                    tuple(int(v) for v in o["box"]),  # type: ignore[arg-type]
                    int(o["placed_frame"]),
                    None if o.get("removed_frame") is None else int(o["removed_frame"]),
                )
                for o in labels.get("left_objects", [])
            ]
            fps = float(labels["fps"])
        except (ValueError, KeyError, TypeError) as exc:
            raise EvaluationError(f"{labels_path}: unreadable labels ({exc!r})") from None
        if fps <= 0:
            raise EvaluationError(f"{labels_path}: fps must be positive")
        seq = cls(root, fps, objects)
        seq._source()  # fail now, not half-way
        return seq

    @property
    def name(self) -> str:
        return self.root.name

    def _source(self) -> list[Path] | Path:
        folder = self.root / "input"
        if folder.is_dir():
            images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if images:
                return images
        videos = sorted(p for p in self.root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        if not videos:
            raise EvaluationError(f"{self.root}: no frames in input/ and no video file")
        return videos[0]

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(frame number from 1, BGR image)`` in order."""
        source = self._source()
        if isinstance(source, list):
            for n, path in enumerate(source, 1):
                image = cv2.imread(str(path))
                if image is None:
                    raise EvaluationError(f"{path}: unreadable image")
                yield n, image
            return
        cap = cv2.VideoCapture(str(source))
        if not cap.isOpened():
            raise EvaluationError(f"{source}: cannot be decoded")
        try:
            n = 0
            while True:
                ok, image = cap.read()
                if not ok:
                    break
                n += 1
                yield n, image
        finally:
            cap.release()
        if n == 0:
            raise EvaluationError(f"{source}: no frame could be decoded")


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv", ".mov", ".webm"}
MATCH_SLACK_FRAMES = 15
"""Labels marked by hand are ±15 frames (``shared/data/README.md``)."""


@dataclass(slots=True)
class ObjectDetection:
    sequence: str
    frame: int
    box: tuple[int, int, int, int]
    matched: bool = False
    delay_s: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {"sequence": self.sequence, "frame": self.frame, "box": list(self.box)}


@dataclass(slots=True)
class ObjectScore:
    """Detections of all folders; one labelled object matches at most one detection."""

    objects: int = 0
    detections: list[ObjectDetection] = field(default_factory=list)
    per_sequence: dict[str, PRF] = field(default_factory=dict)
    frames: int = 0
    seconds: float = 0.0

    @property
    def prf(self) -> PRF:
        tp = sum(d.matched for d in self.detections)
        return PRF(tp, len(self.detections) - tp, self.objects - tp)

    @property
    def median_delay_s(self) -> float | None:
        delays = [d.delay_s for d in self.detections if d.delay_s is not None]
        return float(np.median(delays)) if delays else None


def loose_match(box: tuple[int, int, int, int], truth: tuple[int, int, int, int]) -> bool:
    """The detection's centre lies inside the labelled box grown by half its size on each
    side (labels by hand are ±10 px; a small cup's box is barely larger than that)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x1, y1, x2, y2 = truth
    gx, gy = (x2 - x1) / 2, (y2 - y1) / 2
    return x1 - gx <= cx <= x2 + gx and y1 - gy <= cy <= y2 + gy


def _match(seq: ObjectSequence, dets: list[ObjectDetection]) -> PRF:
    """Each labelled object takes the first detection near it while it lies there."""
    used: set[int] = set()
    for obj in seq.objects:
        end = obj.removed_frame + MATCH_SLACK_FRAMES if obj.removed_frame else None
        for i, det in enumerate(dets):
            in_time = det.frame >= obj.placed_frame - MATCH_SLACK_FRAMES and (
                end is None or det.frame <= end
            )
            if i in used or not in_time or not loose_match(det.box, obj.box):
                continue
            used.add(i)
            det.matched = True
            det.delay_s = (det.frame - obj.placed_frame) / seq.fps
            break
    tp = len(used)
    return PRF(tp, len(dets) - tp, len(seq.objects) - tp)


def evaluate_objects(
    roots: list[Path],
    dwell_s: float = 3.0,
    settings: DumpingSettings | None = None,
    progress: Progress | None = None,
) -> ObjectScore:
    """Run the left-object detector over each folder (whole frame watched, camera time =
    frame number / fps) and match its reports to the labels."""
    base = settings or DumpingSettings()
    settings = base.model_copy(update={"dwell_s": dwell_s})
    score = ObjectScore()
    for root in roots:
        seq = ObjectSequence.open(root)
        detector = LeftObjectDetector(settings)
        dets: list[ObjectDetection] = []
        for n, image in seq.frames():
            start = time.perf_counter()
            reports = detector.update(image, n / seq.fps)
            score.seconds += time.perf_counter() - start
            score.frames += 1
            dets += [ObjectDetection(seq.name, n, r.box) for r in reports]
            if progress:
                progress(n, 0)
        score.per_sequence[seq.name] = _match(seq, dets)
        score.objects += len(seq.objects)
        score.detections += dets
    return score
