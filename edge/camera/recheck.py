"""Second stage of the helmet check: re-decide each head the detector found, from its crop.

The detector proposes heads down to a low score (``candidate_confidence``); for each one a
multinomial logistic regression over hand-made features decides *with helmet*, *without
helmet* or *not a head*.  Features: a HOG of the grey head crop (shape: a helmet's dome and
visor against hair and face), hue/saturation and value histograms of its top and bottom
halves (a helmet's colour against skin), and the detector's own two scores and box geometry.
Everything runs in numpy + OpenCV, so the node needs no training framework; the weights are a
small ``.npz`` written by ``loaxa model train-recheck`` (``devtools/camera/recheck_train.py``).

Measured on ``shared/data/helmet/dev`` (docs/camera.md, "Helmet second stage"): trained on
``shared/data/helmet/train`` it scores *below* the plain detector, so it is off by default
(``helmet.recheck: null``); it is meant to be retrained on a commune's own camera crops.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import cv2
import numpy as np

from edge.camera.helmet import Detection

log = logging.getLogger(__name__)

#: Bumped whenever :func:`features` changes, so old weights are refused, not misread.
FEATURE_VERSION = 1
CROP_SIDE = 32
CROP_MARGIN = 0.2
HOG_CELL = 8
HOG_BINS = 9
#: The packaged weights, trained on ``shared/data/helmet/train`` (see the module docstring).
PACKAGED_WEIGHTS = Path(__file__).with_name("recheck-helmet.npz")


class Verdict(IntEnum):
    """Classes of the second stage; the first two are the detector's class ids."""

    WITH_HELMET = 0
    WITHOUT_HELMET = 1
    NOT_A_HEAD = 2


def head_crop(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """The box grown by ``CROP_MARGIN`` each side, clipped to the image, at CROP_SIDE²."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    left, right = int(max(0, x1 - CROP_MARGIN * bw)), int(min(w, x2 + CROP_MARGIN * bw))
    top, bottom = int(max(0, y1 - CROP_MARGIN * bh)), int(min(h, y2 + CROP_MARGIN * bh))
    crop = image[top : max(bottom, top + 1), left : max(right, left + 1)]
    return cv2.resize(crop, (CROP_SIDE, CROP_SIDE), interpolation=cv2.INTER_AREA)


def hog(grey: np.ndarray) -> np.ndarray:
    """Histogram of oriented gradients: 8-px cells, 9 unsigned bins, 2×2-cell L2 blocks.

    OpenCV 5 dropped ``cv2.HOGDescriptor`` from the main package, so this is the textbook
    Dalal–Triggs layout in numpy (linear interpolation between orientation bins only).
    """
    g = grey.astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=1)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=1)
    magnitude = np.sqrt(gx * gx + gy * gy)
    angle = (np.arctan2(gy, gx) % np.pi) / np.pi * HOG_BINS
    low = np.floor(angle).astype(np.intp) % HOG_BINS
    frac = angle - np.floor(angle)
    n = g.shape[0] // HOG_CELL
    cells = np.zeros((n, n, HOG_BINS), np.float32)
    cy, cx = np.indices(g.shape) // HOG_CELL
    np.add.at(cells, (cy, cx, low), magnitude * (1 - frac))
    np.add.at(cells, (cy, cx, (low + 1) % HOG_BINS), magnitude * frac)
    blocks = [cells[i : i + 2, j : j + 2].ravel() for i in range(n - 1) for j in range(n - 1)]
    return np.concatenate([b / np.sqrt((b * b).sum() + 1e-6) for b in blocks])


def _colour(hsv: np.ndarray) -> list[np.ndarray]:
    hs = cv2.calcHist([hsv], [0, 1], None, [8, 4], [0, 180, 0, 256]).ravel()
    v = cv2.calcHist([hsv], [2], None, [8], [0, 256]).ravel()
    return [hs / max(hs.sum(), 1.0), v / max(v.sum(), 1.0)]


def features(
    image: np.ndarray, box: Sequence[float], scores: Sequence[float]
) -> np.ndarray:
    """One feature row for a head box of a BGR image, with the detector's two class scores."""
    crop = head_crop(image, box)
    parts = [hog(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY))]
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
    half = CROP_SIDE // 2
    parts += _colour(hsv[:half]) + _colour(hsv[half:])
    s = np.clip(np.asarray(scores, np.float32)[:2], 1e-4, 1 - 1e-4)
    h, w = image.shape[:2]
    bw, bh = box[2] - box[0], box[3] - box[1]
    geometry = [np.log(bw * bh / (w * h) + 1e-6), np.log((bw + 1) / (bh + 1))]
    parts.append(np.array([*s, *np.log(s / (1 - s)), s[1] - s[0], *geometry], np.float32))
    return np.concatenate(parts).astype(np.float32)


@dataclass(slots=True, frozen=True)
class RecheckWeights:
    """Standardisation and softmax-regression weights, and how candidates are taken."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # (classes, features)
    intercept: np.ndarray  # (classes,)
    threshold: float  # a helmet class is kept when its probability reaches this
    candidate_confidence: float  # detector score floor for candidates
    nms_iou: float  # class-agnostic NMS of candidates
    feature_version: int = FEATURE_VERSION

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            mean=self.mean,
            scale=self.scale,
            coef=self.coef,
            intercept=self.intercept,
            settings=np.array(
                [self.threshold, self.candidate_confidence, self.nms_iou, self.feature_version],
                np.float64,
            ),
        )

    @classmethod
    def load(cls, path: Path | str) -> RecheckWeights:
        with np.load(Path(path), allow_pickle=False) as z:
            threshold, candidate, nms_iou, version = (float(v) for v in z["settings"])
            weights = cls(
                z["mean"], z["scale"], z["coef"], z["intercept"], threshold, candidate, nms_iou,
                int(version),
            )
        if weights.feature_version != FEATURE_VERSION:
            raise ValueError(
                f"helmet.recheck: weights are for features v{weights.feature_version}, "
                f"this node computes v{FEATURE_VERSION}; retrain with loaxa model train-recheck"
            )
        if weights.coef.shape != (len(Verdict), weights.mean.shape[0]):
            raise ValueError("helmet.recheck: weights file has inconsistent shapes")
        return weights

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """Softmax over (with, without, not a head) for each feature row."""
        z = ((rows - self.mean) / self.scale) @ self.coef.T + self.intercept
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


class HeadRecheck:
    """Re-decides the detector's candidates; see the module docstring."""

    def __init__(self, weights: RecheckWeights) -> None:
        self.weights = weights

    @classmethod
    def from_file(cls, path: Path | str) -> HeadRecheck:
        return cls(RecheckWeights.load(path))

    @property
    def candidate_confidence(self) -> float:
        return self.weights.candidate_confidence

    @property
    def nms_iou(self) -> float:
        return self.weights.nms_iou

    def decide(self, image: np.ndarray, candidates: Sequence[Detection]) -> list[Detection]:
        """Kept heads with their new class and its probability as the confidence."""
        if not candidates:
            return []
        rows = np.stack([features(image, d.box, d.scores) for d in candidates])
        probs = self.weights.probabilities(rows)
        kept: list[Detection] = []
        for det, p in zip(candidates, probs, strict=True):
            cls = int(p[:2].argmax())
            if p[cls] >= self.weights.threshold:
                kept.append(Detection(det.box, cls, float(p[cls]), det.scores))
        return kept


def load_recheck(path: Path | None, camera: str) -> HeadRecheck | None:
    """The camera's second stage, or None: not configured, or unusable (then logged).

    Unusable weights leave the detector deciding alone rather than stopping the helmet check.
    """
    if path is None:
        return None
    try:
        return HeadRecheck.from_file(path)
    except Exception as exc:  # any bad file: a missing, truncated or foreign .npz
        log.error("camera %s: helmet.recheck unusable (%s); detector decides alone", camera, exc)
        return None
