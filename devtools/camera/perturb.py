"""Perturbed copies of a CDnet sequence: what bad light and a cheap camera do to a view.

``loaxa eval perturb SRC OUT`` writes one CDnet folder per perturbation under ``OUT``
(frames re-encoded, ground truth, ROI and temporal ROI copied), so ``loaxa eval motion``
scores the detector on each. Deterministic (seeded), so figures can be reproduced. Never
write into the repository: ``OUT`` belongs in an untracked folder such as ``.run/``.

* ``drift``: a slow cloud: the whole view's gain wanders between 0.75 and 1.15 over
  about 20 s, with a soft brightness band sweeping across the frame;
* ``dimming``: the light drops at once to 65 %, stays there 5 s, comes back at once, twice;
* ``noise``: Gaussian sensor noise (σ = 8 grey levels), new every frame;
* ``jpeg``: JPEG at quality 12 (blocks and ringing, as from a starved RTSP stream).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from devtools.camera.evaluation import CdnetSequence

Perturb = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
FPS = 30.0


def _drift(image: np.ndarray, n: int, _rng: np.random.Generator) -> np.ndarray:
    t = n / FPS
    gain = 0.95 + 0.2 * math.sin(2 * math.pi * t / 20.0)
    h, w = image.shape[:2]
    x = np.arange(w, dtype=np.float32)
    centre = (t / 15.0 % 1.0) * 1.6 * w - 0.3 * w
    band = 1.0 - 0.15 * np.exp(-(((x - centre) / (0.25 * w)) ** 2))
    shape = (1, w, 1) if image.ndim == 3 else (1, w)
    return _clip(image.astype(np.float32) * gain * band.reshape(shape))


def _dimming(image: np.ndarray, n: int, _rng: np.random.Generator) -> np.ndarray:
    dark = any(start <= n < start + int(5 * FPS) for start in (560, 860))
    return _clip(image.astype(np.float32) * 0.65) if dark else image


def _noise(image: np.ndarray, _n: int, rng: np.random.Generator) -> np.ndarray:
    return _clip(image.astype(np.float32) + rng.normal(0, 8.0, image.shape))


def _jpeg(image: np.ndarray, _n: int, _rng: np.random.Generator) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 12])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else image


def _clip(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0, 255).astype(np.uint8)


PERTURBATIONS: dict[str, Perturb] = {
    "drift": _drift,
    "dimming": _dimming,
    "noise": _noise,
    "jpeg": _jpeg,
}
LIGHTING = ("drift", "dimming")
"""The lighting faults (the others are sensor and stream faults)."""


def write_perturbed(source: Path, out: Path, names: list[str] | None = None) -> list[Path]:
    """Write ``out/<name>/`` for each perturbation; returns the folders written."""
    seq = CdnetSequence.open(source)
    written = []
    for name in names or list(PERTURBATIONS):
        perturb = PERTURBATIONS[name]
        folder = out / name
        if folder.exists():
            shutil.rmtree(folder)
        (folder / "input").mkdir(parents=True)
        shutil.copytree(seq.root / "groundtruth", folder / "groundtruth")
        for extra in ("ROI.bmp", "temporalROI.txt"):
            if (seq.root / extra).exists():
                shutil.copy(seq.root / extra, folder / extra)
        rng = np.random.default_rng(14)
        for n in seq.numbers:
            image = cv2.imread(str(seq.inputs[n]), cv2.IMREAD_COLOR)
            cv2.imwrite(
                str(folder / "input" / f"in{n:06d}.jpg"),
                perturb(image, n, rng),
                [cv2.IMWRITE_JPEG_QUALITY, 95],
            )
        written.append(folder)
    return written
