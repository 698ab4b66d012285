"""Camera pipeline benchmark: throughput, CPU share at 15 fps, resident memory.

    .venv/bin/python benchmarks/camera.py [--seconds 20] [--repeat 3]

* ``fps_motion_only`` / ``fps_with_helmet``: ``CameraPipeline.process`` on 960×540 frames of
  ``thai_campus_motorbike_test3.mp4`` (decoded beforehand), as fast as it goes; frames are
  time-stamped as a 15 fps capture, so the helmet model runs on motion at its configured cap
  (5 Hz).  ``fps_model_every_frame`` lifts the cap: the model on every frame with motion.
* ``cpu_share_at_15fps``: a child process runs one ``CameraWorker`` on the clip (looped at
  its own 29.97 fps, capped to 15 fps) with the helmet check for ``--seconds``; CPU time
  (user + system, all threads, decoding included) / wall time, as a share of one core.
* ``rss_mb``: that child's resident memory at the end (VmRSS; ``rss_peak_mb`` is VmHWM):
  Python + OpenCV + onnxruntime with the model loaded + one worker running.

The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LOAXA_SHARED_DIR", REPO.parent / "shared"))
CLIP = SHARED / "data" / "video" / "thai_campus_motorbike_test3.mp4"
MODEL = SHARED / "models" / "helmet-yolov12m-320.onnx"


def load_frames(path: Path, step: int = 2) -> list:
    cap = cv2.VideoCapture(str(path))
    frames, i = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i % step == 0:
            frames.append(frame)
        i += 1
    cap.release()
    return frames


def throughput(frames: list, checks: list[str], rate_hz: float = 5.0) -> float:
    from edge.camera.pipeline import CameraPipeline
    from firmware_config.camera import CameraConfig

    cfg = CameraConfig(
        id="bench", source=str(CLIP), checks=checks, helmet={"model": MODEL, "max_rate_hz": rate_hz}
    )
    pipe = CameraPipeline(cfg)
    start = time.perf_counter()
    for i, f in enumerate(frames):
        pipe.process(f, i / 15.0)
    return len(frames) / (time.perf_counter() - start)


def proc_status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(seconds: float, helmet: bool) -> None:
    """Run one worker in this (fresh) process and print cpu share and memory as JSON."""
    import onnxruntime  # noqa: F401  (the agent process holds it too)

    from edge.camera import CameraWorker
    from firmware_config.camera import CameraConfig

    checks = ["helmet"] if helmet else []
    cfg = CameraConfig(id="bench", source=str(CLIP), fps=15, checks=checks, helmet={"model": MODEL})
    worker = CameraWorker(cfg, lambda a: None, lambda c, k: False)
    _ = worker.pipeline  # load the model before timing
    t0, c0 = time.monotonic(), os.times()
    worker.start()
    time.sleep(seconds)
    stats = worker.stats()
    t1, c1 = time.monotonic(), os.times()
    processed = stats.frames / (t1 - t0)
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    print(
        json.dumps(
            {
                "cpu_share": cpu / (t1 - t0),
                "frames": stats.frames,
                "fps": round(processed, 2),
                "model_runs": stats.model_runs,
                "rss_mb": proc_status("VmRSS"),
                "rss_peak_mb": proc_status("VmHWM"),
                "error": stats.last_error,
            }
        )
    )
    worker.stop()


def run_child(seconds: float, helmet: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", "--seconds", str(seconds)]
    if not helmet:
        cmd.append("--motion-only")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description="camera pipeline benchmark")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--motion-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.seconds, not args.motion_only)
        return
    frames = load_frames(CLIP)
    h, w = frames[0].shape[:2]
    med = statistics.median
    motion = [throughput(frames, []) for _ in range(args.repeat)]
    helmet = [throughput(frames, ["helmet"]) for _ in range(args.repeat)]
    every = [throughput(frames, ["helmet"], rate_hz=60) for _ in range(args.repeat)]
    print(
        f"{len(frames)} frames {w}x{h}: motion only {med(motion):.1f} fps, with helmet "
        f"{med(helmet):.1f} fps, model on every motion frame {med(every):.1f} fps"
    )
    with_h = run_child(args.seconds, helmet=True)
    no_h = run_child(args.seconds, helmet=False)
    print(
        f"worker at 15 fps: cpu {with_h['cpu_share']:.2f} core with helmet, "
        f"{no_h['cpu_share']:.2f} motion only; rss {with_h['rss_mb']:.0f} MB"
    )
    print(
        json.dumps(
            {
                "frame_size": [w, h],
                "fps_motion_only": round(med(motion), 1),
                "fps_with_helmet": round(med(helmet), 1),
                "fps_model_every_frame": round(med(every), 1),
                "fps_runs": {
                    "motion_only": [round(v, 1) for v in motion],
                    "with_helmet": [round(v, 1) for v in helmet],
                },
                "cpu_share_at_15fps": round(with_h["cpu_share"], 3),
                "cpu_share_at_15fps_motion_only": round(no_h["cpu_share"], 3),
                "worker_fps": with_h["fps"],
                "model_runs": with_h["model_runs"],
                "rss_mb": round(with_h["rss_mb"], 1),
                "rss_peak_mb": round(with_h["rss_peak_mb"], 1),
                "rss_mb_motion_only": round(no_h["rss_mb"], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
