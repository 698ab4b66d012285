"""Fixtures of the camera tests: the shared data folder and small synthetic scenes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("LOAXA_SHARED_DIR", REPO.parent / "shared"))
MODEL = SHARED / "models" / "helmet-yolov12m-320.onnx"
CDNET = SHARED / "data" / "motion" / "cdnet-highway-dev"
HELMET_DEV = SHARED / "data" / "helmet" / "dev"
VIDEO = SHARED / "data" / "video"


def need(path: Path) -> Path:
    """Skip (with the path in the reason) when the shared data is not next to the repo."""
    if not path.exists():
        pytest.skip(f"shared data missing: {path} (set LOAXA_SHARED_DIR)")
    return path


@pytest.fixture
def shared_model() -> Path:
    return need(MODEL)


def noisy_background(h: int = 240, w: int = 320, seed: int = 0) -> np.ndarray:
    """A textured static scene: motion detection must ignore its sensor noise."""
    rng = np.random.default_rng(seed)
    base = rng.integers(60, 120, (h // 8, w // 8), dtype=np.uint8)
    return np.kron(base, np.ones((8, 8), np.uint8))


def with_noise(img: np.ndarray, rng: np.random.Generator, sigma: float = 3.0) -> np.ndarray:
    noise = rng.normal(0, sigma, img.shape)
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def square_x(i: int, start: int) -> int:
    """Left edge of the synthetic square in frame ``i`` (it appears at frame ``start``)."""
    return 10 + 4 * (i - start)


def scene(n: int, square: int = 24, y: int = 100, seed: int = 1, start: int = 0) -> list:
    """``n`` grey frames of a bright square crossing a noisy background from frame ``start``."""
    rng = np.random.default_rng(seed)
    bg = noisy_background()
    frames = []
    for i in range(n):
        f = bg.copy()
        if i >= start and square:
            x = square_x(i, start)
            f[y : y + square, x : x + square] = 230
        frames.append(with_noise(f, rng))
    return frames
