"""Camera pipeline benchmark: throughput, CPU share at 15 fps, resident memory.

    .venv/bin/python benchmarks/camera.py [--seconds 20] [--repeat 3] [--model PATH]
        [--no-lean] [--rss-only]

* ``fps_motion_only`` / ``fps_with_helmet``: ``CameraPipeline.process`` on 960×540 frames of
  ``thai_campus_motorbike_test3.mp4`` (decoded beforehand), as fast as it goes; frames are
  time-stamped as a 15 fps capture, so the helmet model runs on motion at its configured cap
  (5 Hz).  ``fps_model_every_frame`` lifts the cap: the model on every frame with motion.
* ``cpu_share_at_15fps``: a child process runs a whole node agent (``EdgeAgent``: store,
  scheduler and player with a file sink, the MQTT link to a port nobody answers, as with
  the 4G down) with one camera on the clip (looped at its own 29.97 fps, capped to 15 fps)
  running motion, the dumping check on a zone and the helmet check, for ``--seconds``; CPU
  time (user + system, all threads, decoding included) / wall time, as a share of one core.
* ``rss_mb``: that child's resident memory at the end (VmRSS; ``rss_peak_mb`` is VmHWM):
  what issue 14 asks to keep at ≤ 150 MB. ``rss_load_mb`` is the same process once the
  camera has delivered its first frame (model loaded); ``rss_mb_motion_only`` the same
  node without the helmet check (motion and dumping: no model).
  ``rss_anon_mb`` / ``rss_file_mb`` split ``rss_mb`` into private memory and pages of mapped
  files (the libraries' code and data): the second depends on the kernel's page cache
  (docs/camera.md, "Memory on a Pi": large folios on this machine's ext4 add ≈ 40 MB).

``--model`` benchmarks another model file (e.g. an INT8 copy from ``loaxa model quantize``);
``--no-lean`` turns ``helmet.lean_memory`` off (onnxruntime's default arena and planning);
``--rss-only`` skips the throughput runs and measures only the worker process(es).

The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import cv2

if TYPE_CHECKING:
    from edge.camera.helmet import HelmetDetector
    from firmware_config.camera import CameraConfig
    from firmware_config.schema import NodeConfig

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


def detector_for(cfg: CameraConfig) -> HelmetDetector | None:
    """The camera's detector, loaded the way the node loads it."""
    from edge.camera.pipeline import load_helmet_detector

    return load_helmet_detector(cfg)


def throughput(
    frames: list, checks: list[str], model: Path, lean: bool, rate_hz: float = 5.0
) -> float:
    from edge.camera.pipeline import CameraPipeline
    from firmware_config.camera import CameraConfig

    cfg = CameraConfig(
        id="bench",
        source=str(CLIP),
        checks=checks,
        helmet={"model": model, "max_rate_hz": rate_hz, "lean_memory": lean},
    )
    pipe = CameraPipeline(cfg, detector=detector_for(cfg), load_model=False)
    start = time.perf_counter()
    for i, f in enumerate(frames):
        pipe.process(f, i / 15.0)
    return len(frames) / (time.perf_counter() - start)


def proc_status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    """A local port nothing listens on: the node's broker link is refused and retried, as
    on a node whose 4G is down (the cameras and the player run regardless)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def node_config(storage: Path, helmet: bool, model: Path, lean: bool) -> NodeConfig:
    """One node with the player (file sink) and one camera: motion, the dumping check on a
    zone covering the lower half of the view, and the helmet check unless ``helmet`` is off."""
    from firmware_config.camera import CameraConfig, ZoneConfig
    from firmware_config.schema import NodeConfig

    zone = ZoneConfig(
        name="bai-dat-trong", polygon=[[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]], dumping=True
    )
    camera = CameraConfig(
        id="bench",
        source=str(CLIP),
        fps=15,
        checks=["helmet", "dumping"] if helmet else ["dumping"],
        zones=[zone],
        helmet={"model": model, "lean_memory": lean},
    )
    return NodeConfig(
        node_id="bench",
        commune="bench",
        storage_dir=storage,
        audio={"output": "file", "file_dir": storage / "sink"},
        mqtt={"host": "127.0.0.1", "port": free_port(), "tls": False},
        cameras=[camera],
    )


def child(seconds: float, helmet: bool, model: Path, lean: bool) -> None:
    """Run one whole node agent in this (fresh) process; print cpu share and memory as JSON."""
    from edge.agent import EdgeAgent

    with tempfile.TemporaryDirectory(prefix="loaxa-bench-") as tmp:
        agent = EdgeAgent(node_config(Path(tmp), helmet, model, lean))
        agent.start()
        assert agent.cameras is not None
        deadline = time.monotonic() + 120
        while not agent.cameras.workers or agent.cameras.workers[0].stats().frames == 0:
            if time.monotonic() > deadline:
                raise SystemExit("the camera delivered no frame in 120 s")
            time.sleep(0.05)
        worker = agent.cameras.workers[0]
        rss_load = proc_status("VmRSS")  # agent running, model loaded, first frame done
        t0, c0, f0 = time.monotonic(), os.times(), worker.stats().frames
        time.sleep(seconds)
        stats = worker.stats()
        t1, c1 = time.monotonic(), os.times()
        cpu = (c1.user - c0.user) + (c1.system - c0.system)
        print(
            json.dumps(
                {
                    "cpu_share": cpu / (t1 - t0),
                    "frames": stats.frames,
                    "fps": round((stats.frames - f0) / (t1 - t0), 2),
                    "model_runs": stats.model_runs,
                    "rss_load_mb": rss_load,
                    "rss_mb": proc_status("VmRSS"),
                    "rss_anon_mb": proc_status("RssAnon"),
                    "rss_file_mb": proc_status("RssFile") + proc_status("RssShmem"),
                    "rss_peak_mb": proc_status("VmHWM"),
                    "error": stats.last_error,
                }
            )
        )
        agent.stop(graceful=False)


def run_child(seconds: float, helmet: bool, model: Path, lean: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", "--seconds", str(seconds), "--model", str(model)]
    if not helmet:
        cmd.append("--motion-only")
    if not lean:
        cmd.append("--no-lean")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description="camera pipeline benchmark")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--model", type=Path, default=MODEL, help="helmet ONNX model")
    ap.add_argument("--no-lean", dest="lean", action="store_false", help="helmet.lean_memory off")
    ap.add_argument(
        "--rss-only", action="store_true", help="skip throughput; worker cpu and memory only"
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--motion-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    for needed in (CLIP, args.model):
        if not needed.is_file():
            raise SystemExit(f"missing {needed} (set LOAXA_SHARED_DIR to the shared folder)")
    if args.child:
        child(args.seconds, not args.motion_only, args.model, args.lean)
        return
    med = statistics.median
    result: dict[str, object] = {"model": str(args.model), "lean_memory": args.lean}
    if not args.rss_only:
        frames = load_frames(CLIP)
        h, w = frames[0].shape[:2]
        model, lean = args.model, args.lean
        motion = [throughput(frames, [], model, lean) for _ in range(args.repeat)]
        helmet = [throughput(frames, ["helmet"], model, lean) for _ in range(args.repeat)]
        every = [throughput(frames, ["helmet"], model, lean, 60) for _ in range(args.repeat)]
        print(
            f"{len(frames)} frames {w}x{h}: motion only {med(motion):.1f} fps, with helmet "
            f"{med(helmet):.1f} fps, model on every motion frame {med(every):.1f} fps"
        )
        result.update(
            {
                "frame_size": [w, h],
                "fps_motion_only": round(med(motion), 1),
                "fps_with_helmet": round(med(helmet), 1),
                "fps_model_every_frame": round(med(every), 1),
                "fps_runs": {
                    "motion_only": [round(v, 1) for v in motion],
                    "with_helmet": [round(v, 1) for v in helmet],
                },
            }
        )
    with_h = [run_child(args.seconds, True, args.model, args.lean) for _ in range(args.repeat)]
    no_h = run_child(args.seconds, False, args.model, args.lean)

    def middle(key: str) -> float:
        return round(med(r[key] for r in with_h), 1)

    errors = [r["error"] for r in with_h if r["error"]]
    runs = ", ".join(str(round(r["rss_mb"])) for r in with_h)
    print(
        f"worker at 15 fps: cpu {middle('cpu_share'):.2f} core with helmet, "
        f"{no_h['cpu_share']:.2f} motion only; rss {middle('rss_mb'):.0f} MB "
        f"(runs {runs})"
    )
    result.update(
        {
            "cpu_share_at_15fps": round(med(r["cpu_share"] for r in with_h), 3),
            "cpu_share_at_15fps_motion_only": round(no_h["cpu_share"], 3),
            "worker_fps": middle("fps"),
            "model_runs": middle("model_runs"),
            "rss_load_mb": middle("rss_load_mb"),
            "rss_mb": middle("rss_mb"),
            "rss_peak_mb": middle("rss_peak_mb"),
            "rss_anon_mb": middle("rss_anon_mb"),
            "rss_file_mb": middle("rss_file_mb"),
            "rss_runs_mb": [round(r["rss_mb"], 1) for r in with_h],
            "rss_mb_motion_only": round(no_h["rss_mb"], 1),
            "worker_errors": errors,
        }
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
