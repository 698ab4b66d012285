"""Live sessions at scale: mouth-to-speaker latency, start skew and bytes per node.

Set-up (all real, on this machine): a synthetic fleet whose N nodes share one zone, the
project-local mosquitto, the controller (``loaxa controller serve``) and N edge agents
(file sinks) over P simulator processes. The benchmark opens a live session for the zone
(``POST /api/live``) and speaks into its WebSocket as the browser does, but from a WAV
sent in 40 ms chunks at real time, so the instant each sample left the "mouth" is known:
sample k leaves at t0 + k / rate. After the chime, the signal carries ``--markers``
distinct bursts of speech-like noise.

Each node's sink holds the session as a WAV with the wall time of its first sample; the
markers are found in it by cross-correlation. **Latency** of a marker at a node = when
the node's sink played it − when it left the mouth (the nodes share this machine's clock).
**Skew** = a marker's time at a node − its median over the nodes. **Bytes per minute per
node** = the frame bytes each node received (every node gets each frame once, from the
zone's topic) per minute of audio, plus the MQTT framing of each frame (fixed header,
topic); TLS adds ~29 bytes per record on top. **Node CPU**: the simulator processes' CPU
during the session, per node.

Usage: ``python benchmarks/live.py --nodes 100 [--processes P] [--markers 8]``; the last
line printed is the JSON result.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _harness import REPO, console, median, percentile, process_tree_cpu_s, running_system

from devtools.simulator import default_processes
from firmware_config.schema import load_node_config

RATE = 16_000
CHUNK_S = 0.04
MARKER_S = 0.5
GAP_S = 1.5


def marker(seed: int) -> np.ndarray:
    import sys

    sys.path.insert(0, str(REPO))
    from tests.live.signals import speechlike

    return speechlike(MARKER_S, seed=seed)


def wav_bytes(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return out.getvalue()


def speak(url: str, token: str, lead_s: float, markers: list[np.ndarray],
          before_close: Callable[[], object]) -> list[float]:
    """Send silence for ``lead_s`` then the markers with gaps, at real time; return the
    wall time each marker's first sample left (``before_close`` runs just before the
    socket, and so the session, ends)."""
    from websockets.sync.client import connect

    gap = np.zeros(int(GAP_S * RATE), dtype=np.float32)
    parts = [np.zeros(int(lead_s * RATE), dtype=np.float32)]
    offsets = []
    for m in markers:
        offsets.append(sum(len(p) for p in parts))
        parts += [m, gap]
    data = wav_bytes(np.concatenate(parts))
    header, pcm = data[:44], data[44:]
    step = int(CHUNK_S * RATE) * 2
    with connect(f"{url}?token={token}", open_timeout=10) as ws:
        json.loads(ws.recv(timeout=10))
        ws.send(header)
        t0_wall, t0 = time.time(), time.monotonic()
        for i in range(0, len(pcm), step):
            delay = t0 + (i // 2) / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            ws.send(pcm[i:i + step])
        time.sleep(3)  # the last frames reach the nodes before the session ends
        before_close()
    return [t0_wall + o / RATE for o in offsets]


def heard(sink: Path, session: str) -> tuple[np.ndarray, float] | None:
    for wav in sink.glob(f"*live-{session}*.wav"):
        meta = json.loads(wav.with_suffix(".json").read_text())
        with wave.open(str(wav), "rb") as w:
            data = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32)
        return data / 32767, meta["started_at"]
    return None


def find(signal: np.ndarray, near: int, within: int, needle: np.ndarray) -> int:
    from scipy.signal import correlate

    lo = max(0, near - within)
    part = signal[lo:near + within + len(needle)]
    return lo + int(np.argmax(correlate(part, needle, mode="valid", method="fft")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--processes", type=int, default=None)
    ap.add_argument("--markers", type=int, default=8)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    n = args.nodes
    processes = args.processes or default_processes(n)
    markers = [marker(100 + i) for i in range(args.markers)]
    with tempfile.TemporaryDirectory(prefix="loaxa-live-") as tmp, running_system(
            args.workdir or Path(tmp), n, per_zone=n) as system:
        system.start_nodes(n, processes)
        time.sleep(3 + n / 250)
        nodes_proc = system.procs[-1]
        opened = system.api.call("POST", "/api/live", {"targets": {"zones": ["zone-001"]},
                                                       "title": "benchmark"})
        session = opened["id"]
        url = system.api.base.replace("http://", "ws://") + opened["audio"]
        cpu0, t_cpu0 = process_tree_cpu_s(nodes_proc.pid), time.monotonic()
        console.log(f"session {session[:8]}: speaking {args.markers} markers to {n} nodes")
        seen: dict = {}

        def before_close() -> None:
            seen.update(system.api.call("GET", f"/api/live/{session}"),
                        cpu=process_tree_cpu_s(nodes_proc.pid) - cpu0,
                        elapsed=time.monotonic() - t_cpu0)

        sent = speak(url, system.api.token, opened["chime_s"] + 0.5, markers, before_close)
        status, cpu, elapsed = seen, seen["cpu"], seen["elapsed"]
        time.sleep(4)
        latencies, at, firsts = [], {}, []
        for node, path in system.fleet.node_configs.items():
            got = heard(load_node_config(path).audio.file_dir, session)
            if got is None:
                continue
            samples, start = got
            firsts.append(start)
            times = []
            for m, t in zip(markers, sent, strict=True):
                expected = int((t + opened["latency_ms"] / 1000 - start) * RATE)
                lag = find(samples, expected, RATE, m)
                times.append(start + lag / RATE)
                latencies.append(times[-1] - t)
            at[node] = times
        skews = []
        for k in range(len(markers)):
            mid = median([times[k] for times in at.values()])
            skews += [abs(times[k] - mid) * 1000 for times in at.values()]
        topic = len("loaxa/v1/xa-sim/zone/zone-001/live")  # the synthetic fleet's commune
        audio_min = status["frames"] * 0.4 / 60
        per_min = (status["bytes"] + status["frames"] * (2 + 2 + topic)) / audio_min
    print(json.dumps({
        "nodes": n, "nodes_heard": len(at), "processes": processes,
        "latency_p50_s": round(percentile(latencies, 50), 3),
        "latency_p99_s": round(percentile(latencies, 99), 3),
        "skew_p99_ms": round(percentile(skews, 99), 2),
        "skew_max_ms": round(max(skews), 2),
        "first_sound_spread_ms": round((max(firsts) - min(firsts)) * 1000, 2),
        "bytes_per_min_per_node": round(per_min),
        "payload_bytes_per_min_per_node": round(status["bytes"] / audio_min),
        "node_cpu_percent": round(100 * cpu / elapsed / n, 3),
        "frames": status["frames"], "markers": len(markers),
    }))


if __name__ == "__main__":
    main()
