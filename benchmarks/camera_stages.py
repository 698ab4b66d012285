"""Per-frame cost of each camera stage on one core: what a Pi budget is made of.

    .venv/bin/python benchmarks/camera_stages.py [--frames 60] [--model PATH]...
        [--recheck PATH] [--threads 1]

On 960×540 frames of ``thai_campus_motorbike_test3.mp4``, median milliseconds per call of:
decoding (``cv2.VideoCapture.read``), motion (``MotionDetector.detect``), letterbox + blob
(a 400×400 motion crop to the 320 input), the model run (each ``--model``, ``--threads``
onnxruntime threads, 1 by default: one Pi core), decode + NMS, the second stage per candidate
(``--recheck`` weights; features + softmax), the tracker update, and the alert snapshot
(boxes drawn, JPEG ≤ 200 kB).  ``motion_frame_ms`` adds up one motion frame that runs the
model with its second stage: the figure the issue's 0.5 s budget is about.  Numpy and OpenCV
are held to one thread.  The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from edge.camera.events import draw_boxes, encode_jpeg  # noqa: E402
from edge.camera.helmet import HelmetDetector, decode, letterbox, to_blob  # noqa: E402
from edge.camera.motion import MotionDetector  # noqa: E402
from edge.camera.recheck import PACKAGED_WEIGHTS, HeadRecheck  # noqa: E402
from edge.camera.tracker import IoUTracker  # noqa: E402
from firmware_config.camera import MotionSettings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LOAXA_SHARED_DIR", REPO.parent / "shared"))
CLIP = SHARED / "data" / "video" / "thai_campus_motorbike_test3.mp4"
MODEL = SHARED / "models" / "helmet-yolov12m-320.onnx"


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 3)


def decoded_frames(count: int) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(CLIP))
    frames, times = [], []
    for _ in range(count):
        start = time.perf_counter()
        ok, frame = cap.read()
        times.append(time.perf_counter() - start)
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames, round(1000 * statistics.median(times), 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--model", type=Path, action="append", help="repeatable; default shared")
    ap.add_argument("--recheck", type=Path, default=PACKAGED_WEIGHTS)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    frames, decode_ms = decoded_frames(args.frames)
    motion = MotionDetector(MotionSettings())
    motion_times = []
    for i, frame in enumerate(frames):
        start = time.perf_counter()
        motion.detect(frame, i / 15)
        motion_times.append(time.perf_counter() - start)
    crop = frames[len(frames) // 2][100:500, 300:700]
    blob_ms = median_ms(lambda: to_blob(letterbox(crop, 320)[0]), 20)
    result: dict[str, object] = {
        "frame_size": list(frames[0].shape[1::-1]),
        "threads": args.threads,
        "decode_ms": decode_ms,
        "motion_ms": round(1000 * statistics.median(motion_times), 3),
        "letterbox_blob_ms": blob_ms,
    }
    padded, lb = letterbox(crop, 320)
    blob = to_blob(padded)
    recheck = HeadRecheck.from_file(args.recheck)
    models: dict[str, dict[str, float]] = {}
    for path in args.model or [MODEL]:
        det = HelmetDetector(path, threads=args.threads)
        det._run(blob)  # warm-up: first run allocates and prepacks
        run_ms = median_ms(lambda det=det: det._run(blob), 10)
        out = det._run(blob)
        decode_ms_ = median_ms(lambda out=out: decode(out, lb, 400, 400, 0.25, 0.7, False), 20)
        cands = det.candidates(crop, recheck.candidate_confidence, recheck.nms_iou)
        per_cand = median_ms(lambda c=cands: recheck.decide(crop, c[:1]), 20) if cands else 0.0
        rechecked = median_ms(lambda c=cands: recheck.decide(crop, c), 10)
        models[path.name] = {
            "model_run_ms": run_ms,
            "decode_nms_ms": decode_ms_,
            "candidates": len(cands),
            "recheck_per_candidate_ms": per_cand,
            "recheck_frame_ms": rechecked,
            "motion_frame_ms": round(
                result["motion_ms"] + blob_ms + run_ms + decode_ms_ + rechecked, 1
            ),
        }
    tracker = IoUTracker(iou_threshold=0.1, max_age_s=2.0, alert_confidence=0.5)
    dets = HelmetDetector(MODEL, threads=args.threads).detect(crop)
    result["tracker_ms"] = median_ms(lambda: tracker.update(dets, time.monotonic()), 50)
    boxes = [(*(int(v) for v in d.box), d.label, d.confidence) for d in dets]
    result["snapshot_ms"] = median_ms(
        lambda: encode_jpeg(draw_boxes(frames[0], boxes), 200_000, 1280, 85), 10
    )
    result["models"] = models
    for name, m in models.items():
        print(f"{name}: model {m['model_run_ms']:.0f} ms, motion frame {m['motion_frame_ms']} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
