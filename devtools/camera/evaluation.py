"""Scoring of the motion detector (CDnet layout) and the helmet detector (YOLO labels).

Kept free of printing so the CLI, the tests and the benchmarks share one implementation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.camera.geometry import boxes_mask, iou_matrix
from edge.camera.helmet import CLASS_NAMES, Detection, HelmetDetector
from edge.camera.motion import MotionDetector

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


@dataclass(slots=True)
class CdnetSequence:
    """A CDnet folder: ``input/inNNNNNN.jpg``, ``groundtruth/gtNNNNNN.png``, ROI, temporal ROI."""

    root: Path
    first: int
    last: int
    roi: np.ndarray
    count: int

    @classmethod
    def open(cls, root: Path) -> CdnetSequence:
        root = Path(root)
        inputs = sorted((root / "input").glob("in*.jpg"))
        if not inputs:
            raise FileNotFoundError(f"{root}/input has no inNNNNNN.jpg frames")
        first, last = (int(v) for v in (root / "temporalROI.txt").read_text().split()[:2])
        roi = cv2.imread(str(root / "ROI.bmp"), cv2.IMREAD_GRAYSCALE)
        if roi is None:
            raise FileNotFoundError(f"{root}/ROI.bmp is missing")
        return cls(root, first, min(last, len(inputs)), roi > 0, len(inputs))

    def frame(self, n: int) -> np.ndarray:
        image = cv2.imread(str(self.root / "input" / f"in{n:06d}.jpg"), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise FileNotFoundError(f"frame {n} unreadable")
        return image

    def truth(self, n: int) -> np.ndarray:
        gt = cv2.imread(str(self.root / "groundtruth" / f"gt{n:06d}.png"), cv2.IMREAD_GRAYSCALE)
        if gt is None:
            raise FileNotFoundError(f"ground truth {n} unreadable")
        return gt


def score_mask(pred: np.ndarray, gt: np.ndarray, roi: np.ndarray, acc: PRF) -> None:
    """Add one frame's pixel counts: only 0/50/255 inside the ROI are scored (CDnet rules)."""
    valid = roi & ((gt == GT_STATIC) | (gt == GT_SHADOW) | (gt == GT_MOVING))
    pos = gt == GT_MOVING
    hit = pred > 0
    acc.tp += int(np.count_nonzero(hit & pos & valid))
    acc.fp += int(np.count_nonzero(hit & ~pos & valid))
    acc.fn += int(np.count_nonzero(~hit & pos & valid))


def evaluate_motion(
    root: Path,
    detector: MotionDetector | None = None,
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
    for n in range(1, seq.count + 1):
        image = seq.frame(n)
        start = time.perf_counter()
        result = detector.detect(image, n / fps)
        spent += time.perf_counter() - start
        if progress:
            progress(n, seq.count)
        if not seq.first <= n <= seq.last:
            continue
        h, w = image.shape
        pred = boxes_mask(result.boxes, w, h)
        gt = seq.truth(n)
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
