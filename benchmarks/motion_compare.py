"""Motion detectors compared on a CDnet sequence: ours vs Frigate's vs OpenCV MOG2.

    .venv/bin/python benchmarks/motion_compare.py [CDNET_DIR] [--repeat N]

All three get the same grey frames (decoded beforehand, so only detection is timed) and are
scored the same way: pixel precision/recall/F1 of box-filled masks under CDnet rules (MOG2 is
also scored on its raw pixel mask, for reference).  The last line printed is JSON.

``FrigateImprovedMotion`` is a port, for comparison only, of the algorithm of
``ImprovedMotionDetector`` in Frigate (https://github.com/blakeblackshear/frigate,
``frigate/motion/improved_motion.py``, MIT licence, © Blake Blackshear) with its default
``MotionConfig`` (frame_height 100, threshold 30, contour_area 10, frame_alpha 0.01,
lightning_threshold 0.8, improve_contrast on).  Left out: PTZ handling, live config updates
and debug images; scipy's ``gaussian_filter(sigma=1, radius=1)`` is replaced by the same
3×3 Gaussian in OpenCV (reflect border).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from devtools.camera.evaluation import PRF, CdnetSequence, score_mask
from edge.camera.geometry import Box, boxes_mask
from edge.camera.motion import MotionDetector

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LOAXA_SHARED_DIR", REPO.parent / "shared"))


class FrigateImprovedMotion:
    """Port of Frigate's ImprovedMotionDetector (see the module docstring for attribution)."""

    def __init__(
        self,
        shape: tuple[int, int],
        frame_height: int = 100,
        threshold: int = 30,
        contour_area: int = 10,
        frame_alpha: float = 0.01,
        lightning_threshold: float = 0.8,
        improve_contrast: bool = True,
    ) -> None:
        self.shape = shape
        self.resize_factor = shape[0] / frame_height
        self.size = (frame_height, frame_height * shape[1] // shape[0])
        self.avg = np.zeros(self.size, np.float32)
        self.motion_frames = 0
        self.calibrating = True
        self.contrast = np.zeros((50, 2), np.uint8)
        self.contrast[:, 1] = 255
        self.contrast_i = 0
        self.threshold, self.contour_area = threshold, contour_area
        self.frame_alpha, self.lightning = frame_alpha, lightning_threshold
        self.improve_contrast = improve_contrast

    def _stretch(self, img: np.ndarray) -> np.ndarray:
        lo = np.percentile(img, 4).astype(np.uint8)
        hi = np.percentile(img, 96).astype(np.uint8)
        if lo < hi:
            self.contrast[self.contrast_i] = [lo, hi]
            self.contrast_i = (self.contrast_i + 1) % len(self.contrast)
            a, b = np.mean(self.contrast, axis=0)
            img = np.clip(img, a, b)
            img = (((img - a) / (b - a)) * 255).astype(np.uint8)
        return img

    def detect(self, grey: np.ndarray) -> list[Box]:
        small = cv2.resize(grey, (self.size[1], self.size[0]), interpolation=cv2.INTER_NEAREST)
        if self.improve_contrast:
            small = self._stretch(small)
        small = cv2.GaussianBlur(small, (3, 3), 1, borderType=cv2.BORDER_REFLECT)
        delta = cv2.absdiff(small, cv2.convertScaleAbs(self.avg))
        thresh = cv2.threshold(delta, self.threshold, 255, cv2.THRESH_BINARY)[1]
        thresh = cv2.dilate(thresh, None, iterations=1)
        contours, _ = cv2.findContours(thresh, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes: list[Box] = []
        total = 0.0
        f = self.resize_factor
        for c in contours:
            area = cv2.contourArea(c)
            total += area
            if area > self.contour_area:
                x, y, w, h = cv2.boundingRect(c)
                boxes.append((int(x * f), int(y * f), int((x + w) * f), int((y + h) * f)))
        pct = total / (self.size[0] * self.size[1])
        if pct < 0.05 and len(boxes) <= 4:
            self.calibrating = False
        if self.calibrating or pct > self.lightning:
            self.calibrating = True
        alpha = 0.2 if self.calibrating else self.frame_alpha
        if boxes:
            self.motion_frames += 1
            if self.motion_frames >= 10:
                cv2.accumulateWeighted(small, self.avg, alpha)
        else:
            cv2.accumulateWeighted(small, self.avg, alpha)
            self.motion_frames = 0
        return boxes


def run(seq: CdnetSequence, frames: list[np.ndarray], make: Callable, mode: str) -> dict:
    """Time one pass of a fresh detector; score box-filled (and for MOG2 raw) masks."""
    det = make()
    outputs = []
    start = time.perf_counter()
    for i, f in enumerate(frames):
        outputs.append(det(f, (i + 1) / 30.0))
    seconds = time.perf_counter() - start
    boxed, raw = PRF(), PRF()
    h, w = frames[0].shape
    for n in range(seq.first, seq.last + 1):
        out = outputs[n - seq.numbers[0]]
        gt = seq.truth(n)
        if mode == "mask":
            mask = out
            contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            rects = [cv2.boundingRect(c) for c in contours if cv2.contourArea(c) >= 10]
            score_mask(mask, gt, seq.roi, raw)
            out = [(x, y, x + bw, y + bh) for x, y, bw, bh in rects]
        score_mask(boxes_mask(out, w, h), gt, seq.roi, boxed)
    result = {"fps": len(frames) / seconds, **boxed.as_dict()}
    if mode == "mask":
        result["pixel_mask_f1"] = round(raw.f1, 4)
    return result


def detectors(shape: tuple[int, int]) -> dict[str, tuple[Callable, str]]:
    def ours() -> Callable:
        d = MotionDetector()
        return lambda f, t: d.detect(f, t).boxes

    def frigate() -> Callable:
        d = FrigateImprovedMotion(shape)
        return lambda f, t: d.detect(f)

    def mog2() -> Callable:
        m = cv2.createBackgroundSubtractorMOG2()  # OpenCV defaults; shadows (127) dropped
        return lambda f, t: cv2.threshold(m.apply(f), 200, 255, cv2.THRESH_BINARY)[1]

    return {"loaxa": (ours, "boxes"), "frigate": (frigate, "boxes"), "mog2": (mog2, "mask")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "cdnet", nargs="?", type=Path, default=SHARED / "data" / "motion" / "cdnet-highway-dev"
    )
    ap.add_argument("--repeat", type=int, default=5, help="timed passes; the median is kept")
    args = ap.parse_args()
    seq = CdnetSequence.open(args.cdnet)
    frames = [seq.frame(n) for n in seq.numbers]
    summary: dict[str, dict] = {}
    for name, (make, mode) in detectors(frames[0].shape).items():
        runs = [run(seq, frames, make, mode) for _ in range(args.repeat)]
        best = dict(runs[0])
        best["fps"] = round(statistics.median(r["fps"] for r in runs), 1)
        best["fps_runs"] = [round(r["fps"]) for r in runs]
        summary[name] = best
        print(
            f"{name:8s} fps {best['fps']:8.1f}  P {best['precision']:.4f}  "
            f"R {best['recall']:.4f}  F1 {best['f1']:.4f}"
        )
    print(json.dumps({"frames": len(frames), "scoring": "box-filled, CDnet", **summary}))


if __name__ == "__main__":
    main()
