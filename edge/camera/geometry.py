"""Boxes and polygons: the small shared vocabulary of the camera pipeline.

A box is ``(x1, y1, x2, y2)`` in pixels, ``x2``/``y2`` exclusive, so its area is
``(x2 - x1) * (y2 - y1)`` and it can be used directly as a numpy slice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from firmware_config.camera import Polygon, polygon_to_pixels

Box = tuple[int, int, int, int]


def polygons_mask(polygons: Iterable[Polygon], width: int, height: int) -> np.ndarray:
    """A uint8 mask (255 inside any polygon) of a ``width``×``height`` frame."""
    mask = np.zeros((height, width), np.uint8)
    for polygon in polygons:
        corners = np.array(polygon_to_pixels(polygon, width, height), np.int32)
        cv2.fillPoly(mask, [corners], 255)
    return mask


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two corner boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``[N, 4]`` and ``[M, 4]`` corner boxes, vectorised."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def boxes_mask(boxes: Iterable[Box], width: int, height: int) -> np.ndarray:
    """Fill boxes into a uint8 mask: how the motion output is scored (box-filled)."""
    mask = np.zeros((height, width), np.uint8)
    for x1, y1, x2, y2 in boxes:
        mask[max(0, y1) : min(height, y2), max(0, x1) : min(width, x2)] = 255
    return mask


def expand_box(box: Box, margin: float, width: int, height: int) -> Box:
    """Grow a box by ``margin`` of its size on each side, clipped to the frame."""
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
    return (
        max(0, int(x1 - dx)),
        max(0, int(y1 - dy)),
        min(width, int(x2 + dx)),
        min(height, int(y2 + dy)),
    )


def merge_overlapping(boxes: Iterable[Box]) -> list[Box]:
    """Union boxes that overlap or touch until none do (few boxes: quadratic is fine)."""
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        out: list[Box] = []
        for box in merged:
            for i, other in enumerate(out):
                if (
                    box[0] <= other[2]
                    and other[0] <= box[2]
                    and box[1] <= other[3]
                    and other[1] <= box[3]
                ):
                    out[i] = (
                        min(box[0], other[0]),
                        min(box[1], other[1]),
                        max(box[2], other[2]),
                        max(box[3], other[3]),
                    )
                    changed = True
                    break
            else:
                out.append(box)
        merged = out
    return merged


@dataclass(frozen=True)
class WorkGeometry:
    """The smaller size a detector works at for a given frame size (width capped, aspect
    kept), with the scale back to frame pixels: one rule for every detector, so a box or a
    mask means the same thing in each."""

    frame_size: tuple[int, int]
    work_size: tuple[int, int]
    scale: tuple[float, float]

    @classmethod
    def fit(cls, width: int, height: int, max_width: int) -> WorkGeometry:
        work_w = min(max_width, width)
        work_h = max(1, round(height * work_w / width))
        return cls((width, height), (work_w, work_h), (width / work_w, height / work_h))

    def mask(self, polygons: Iterable[Polygon]) -> np.ndarray:
        """The polygons (normalised coordinates) filled into a work-sized uint8 mask."""
        full = polygons_mask(polygons, *self.frame_size)
        return cv2.resize(full, self.work_size, interpolation=cv2.INTER_NEAREST)

    def grey(self, frame: np.ndarray) -> np.ndarray:
        """Grey and downscaled (area interpolation also averages away sensor noise)."""
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        if grey.shape[1] != self.work_size[0]:
            grey = cv2.resize(grey, self.work_size, interpolation=cv2.INTER_AREA)
        return grey
