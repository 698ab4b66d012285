"""Helmet detector: a user-supplied YOLO ONNX model (classes 0 With Helmet, 1 Without Helmet).

The model is treated as a black box with the output layout described in
``shared/models/README.md``: ``[1, 4 + C, N]`` rows ``cx, cy, w, h`` in input pixels followed by
per-class scores (already sigmoid, no objectness).  Letterbox, decode and non-maximum
suppression are done here in numpy so the same code runs with onnxruntime or OpenCV DNN.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from edge.camera.geometry import Box

if TYPE_CHECKING:
    from edge.camera.recheck import HeadRecheck

log = logging.getLogger(__name__)

CLASS_NAMES = ("with_helmet", "without_helmet")
WITH_HELMET, WITHOUT_HELMET = 0, 1
PAD_VALUE = 114


@dataclass(slots=True, frozen=True)
class Detection:
    """One head found by the model, in the pixels of the image it was given."""

    box: tuple[float, float, float, float]
    cls: int
    confidence: float
    #: The model's score for every class (the second stage reads both); empty if unknown.
    scores: tuple[float, ...] = ()

    @property
    def label(self) -> str:
        return CLASS_NAMES[self.cls] if self.cls < len(CLASS_NAMES) else str(self.cls)


@dataclass(slots=True, frozen=True)
class Letterbox:
    """How an image was fitted into the square input: ``input = image * r + (left, top)``."""

    r: float
    left: int
    top: int


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio, pad with grey 114 split evenly on both sides."""
    h, w = image.shape[:2]
    r = min(size / h, size / w)
    new_w, new_h = round(w * r), round(h * r)
    if (new_w, new_h) != (w, h):
        # Bilinear, as in the training pipeline: INTER_AREA measured 0.749 vs 0.757 F1.
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    dw, dh = (size - new_w) / 2, (size - new_h) / 2
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    padded = cv2.copyMakeBorder(
        image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3
    )
    return padded, Letterbox(r, left, top)


def to_blob(padded_bgr: np.ndarray) -> np.ndarray:
    """BGR uint8 HWC → RGB float32 NCHW in 0–1, as the model expects."""
    rgb = padded_bgr[:, :, ::-1].astype(np.float32) * (1.0 / 255.0)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best first."""
    order = np.argsort(-scores)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.array(keep, np.int64)


def batched_nms(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float, agnostic: bool
) -> np.ndarray:
    """Per-class NMS by offsetting each class's boxes apart; class-agnostic when asked."""
    if agnostic or len(boxes) == 0:
        return nms(boxes, scores, iou)
    offset = classes[:, None].astype(np.float32) * (float(boxes.max()) + 1.0)
    return nms(boxes + offset, scores, iou)


def decode(
    output: np.ndarray,
    lb: Letterbox,
    image_w: int,
    image_h: int,
    conf: float,
    iou: float,
    agnostic: bool,
) -> list[Detection]:
    """Model output ``[1, 4 + C, N]`` → detections in the original image's pixels."""
    rows = output[0].T
    scores_all = rows[:, 4:]
    classes = scores_all.argmax(axis=1)
    scores = scores_all[np.arange(len(rows)), classes]
    keep = scores > conf
    if not keep.any():
        return []
    rows, classes, scores = rows[keep], classes[keep], scores[keep]
    cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kept = batched_nms(boxes, scores, classes, iou, agnostic)
    boxes, all_scores = boxes[kept], scores_all[keep][kept]
    boxes[:, [0, 2]] = ((boxes[:, [0, 2]] - lb.left) / lb.r).clip(0, image_w)
    boxes[:, [1, 3]] = ((boxes[:, [1, 3]] - lb.top) / lb.r).clip(0, image_h)
    return [
        Detection(tuple(float(v) for v in b), int(c), float(s), tuple(float(v) for v in a))
        for b, c, s, a in zip(boxes, classes[kept], scores[kept], all_scores, strict=True)
    ]


class _Runner(Protocol):
    def __call__(self, blob: np.ndarray) -> np.ndarray: ...


def _no_trim() -> None:
    pass


#: glibc ``mallopt`` parameters (malloc.h): arenas cap, fixed mmap threshold.
_M_ARENA_MAX, _M_MMAP_THRESHOLD = -8, -3
MALLOC_ARENAS = 2
MMAP_THRESHOLD = 128 * 1024


def _tune_malloc() -> None:
    """Cap glibc at two malloc arenas and serve blocks ≥ 128 KiB by ``mmap`` (no-op elsewhere).

    Each thread that allocates (the camera's, onnxruntime's pool) otherwise gets an arena of
    its own whose freed pages stay resident, and glibc raises its mmap threshold once a big
    block is freed, so frames and activations then land on the heap and fragment it.  A fixed
    threshold sends them to ``mmap``, returned to the OS on free.  Process-wide, set once,
    before onnxruntime starts its threads; measured ≈ 8 MB less for the INT8 worker, no
    measurable speed cost (docs/camera.md, Memory on a Pi).  Same as the environment
    variables ``MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072``.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def _heap_trimmer() -> Callable[[], None]:
    """glibc's ``malloc_trim(0)``: hand freed heap pages back to the OS (no-op elsewhere).

    onnxruntime frees the model's protobuf and its optimiser's copies after loading, and
    without its arena frees activations after each run, but glibc keeps the pages: trimming
    after loading and after each run is what brings the resident size down (measured: fp32
    session 257 → 160 MB, INT8 138 → 112 MB in a bare process); a trim costs well under 1 ms.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def release() -> None:
        trim(0)

    return release


def _onnxruntime_runner(path: Path, threads: int, lean: bool) -> tuple[_Runner, int | None]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    trim: Callable[[], None] = _no_trim
    if lean:
        # No arena and no memory-pattern planning: activations are allocated per run and
        # freed.  Graph optimisation stays at its default (all): it fuses an INT8 model's
        # QuantizeLinear/DequantizeLinear pairs into QLinearConv, without which it is slow.
        opts.enable_cpu_mem_arena = False
        opts.enable_mem_pattern = False
        _tune_malloc()
        trim = _heap_trimmer()
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    trim()
    inp = session.get_inputs()[0]
    side = inp.shape[-1] if isinstance(inp.shape[-1], int) else None

    def run(blob: np.ndarray) -> np.ndarray:
        out = session.run(None, {inp.name: blob})[0]
        trim()
        return out

    return run, side


def _opencv_runner(path: Path, threads: int, lean: bool) -> tuple[_Runner, int | None]:
    cv2.setNumThreads(threads)
    net = cv2.dnn.readNetFromONNX(str(path))

    def run(blob: np.ndarray) -> np.ndarray:
        net.setInput(blob)
        return np.asarray(net.forward())

    return run, None


class HelmetDetector:
    """Loads the model once; :meth:`detect` on whole images, :meth:`detect_regions` on crops."""

    def __init__(
        self,
        model: Path | str,
        input_size: int = 320,
        runtime: str = "onnxruntime",
        threads: int = 2,
        confidence: float = 0.25,
        nms_iou: float = 0.7,
        class_agnostic: bool = False,
        lean_memory: bool = True,
        recheck: HeadRecheck | None = None,
    ) -> None:
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"helmet.model: no such file {path}")
        loader = _onnxruntime_runner if runtime == "onnxruntime" else _opencv_runner
        self._run, fixed_side = loader(path, threads, lean_memory)
        if fixed_side is not None and fixed_side != input_size:
            raise ValueError(
                f"helmet.input_size is {input_size} but the model's input is fixed at {fixed_side}"
            )
        self.input_size = input_size
        self.confidence = confidence
        self.nms_iou = nms_iou
        self.class_agnostic = class_agnostic
        self.runtime = runtime
        self.path = path
        self.lean_memory = lean_memory
        self.recheck = recheck

    def detect(self, image: np.ndarray, confidence: float | None = None) -> list[Detection]:
        """Detect heads on a whole BGR image (letterboxed to the input size)."""
        conf = self.confidence if confidence is None else confidence
        if self.recheck is not None:
            # second stage: low-score candidates, one box per head, re-decided from the crop
            floor = min(conf, self.recheck.candidate_confidence)
            return self.recheck.decide(image, self.candidates(image, floor, self.recheck.nms_iou))
        padded, lb = letterbox(image, self.input_size)
        h, w = image.shape[:2]
        output = self._run(to_blob(padded))
        return decode(output, lb, w, h, conf, self.nms_iou, self.class_agnostic)

    def candidates(self, image: np.ndarray, floor: float, nms_iou: float) -> list[Detection]:
        """Every head box scoring above ``floor``, class-agnostic NMS: second-stage input."""
        padded, lb = letterbox(image, self.input_size)
        h, w = image.shape[:2]
        return decode(self._run(to_blob(padded)), lb, w, h, floor, nms_iou, True)

    def detect_regions(self, image: np.ndarray, regions: Sequence[Box]) -> list[Detection]:
        """Detect on each crop, map back to frame pixels, then NMS across crops."""
        found: list[Detection] = []
        for x1, y1, x2, y2 in regions:
            for d in self.detect(image[y1:y2, x1:x2]):
                bx1, by1, bx2, by2 = d.box
                found.append(
                    Detection((bx1 + x1, by1 + y1, bx2 + x1, by2 + y1), d.cls, d.confidence)
                )
        if len(regions) <= 1 or len(found) <= 1:
            return found
        boxes = np.array([d.box for d in found], np.float32)
        scores = np.array([d.confidence for d in found], np.float32)
        classes = np.array([d.cls for d in found])
        kept = batched_nms(boxes, scores, classes, self.nms_iou, self.class_agnostic)
        return [found[i] for i in kept]
