"""Emergency fan-out: from ``POST /api/emergency`` to "started" on N simulated nodes.

Set-up (all real, on this machine): a synthetic fleet of N nodes, the project-local
mosquitto, the controller, and N edge agents over P worker processes (WAV file sinks,
``loaxa simulate --processes P``).

Measured, in this order:

1. **raw**: the bare broker's fan-out, for comparison: one QoS 1 publish to N bare paho
   subscribers with the nodes' own accounts (paho's threaded loop), publish → ``on_message``;
   p99 over the N receivers, per round. Run before the nodes start.
2. **fresh**: an emergency with new text (about 30 s of espeak-ng speech), rendered on
   the spot: from the API call to each node's ``started`` report (its ``actual_at``), so
   it includes text-to-speech, media sent once per commune topic and fanned out by the
   broker, sha256 check, decode and start. ``fresh_p99_s``: p99 over nodes, median over
   rounds; ``fresh_max_s``: the last node (median over rounds).
3. **held**: the same clip again (every node holds it, and has decoded it, from step 2):
   ``POST /api/emergency {"announcement_id": …, "targets": {"all": true}}`` →
   ``started``. ``p50_s``/``p99_s``: percentiles over the nodes, median over rounds.

Each emergency is ended with ``POST /api/emergency/stop`` before the next.
Between 1 and 2, ``idle_cpu_share``: the share of one core the N nodes use over
``--idle-s`` seconds (30) with nothing to do.

The last line printed is the JSON result: ``nodes``, ``idle_cpu_share``, ``p50_s``,
``p99_s``, ``raw_p99_s``, ``ratio_p99`` (= p99_s / raw_p99_s), ``fresh_p99_s``, and details.

Usage: ``python benchmarks/fanout.py --nodes 1000 [--processes 8] [--rounds 5]
[--communes 30]`` (with several communes, the emergency goes to every node of the
province, its audio and command once per commune topic, and the raw broker gets one
publish per commune too).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

from _harness import (
    System,
    console,
    median,
    percentile,
    process_tree_cpu_s,
    raw_fanout,
    running_system,
    wait_quiet,
)

from devtools.simulator import default_processes

# About 30 s of espeak-ng speech (Vietnamese, default rate); the round number is added so
# each fresh round renders and sends a clip no node has seen.
STORM_TEXT = (
    "Thông báo khẩn của Ủy ban nhân dân xã. Bão số ba đang tiến vào đất liền, gió mạnh cấp "
    "mười, giật cấp mười hai, mưa rất to. Đề nghị bà con không ra khơi, không đi qua ngầm, "
    "tràn và khu vực sạt lở; chằng chống nhà cửa, cắt tỉa cây cao quanh nhà; chuẩn bị lương "
    "thực, nước uống, đèn pin cho ba ngày. Các hộ ở vùng trũng thấp và ven sông di chuyển "
    "đến nơi an toàn trước mười bảy giờ hôm nay theo hướng dẫn của trưởng thôn và lực lượng "
    "dân quân. Đây là bản tin số {n}."
)


def emergency(system: System, body: dict, nodes: int, timeout: float, what: str
              ) -> tuple[float, dict[str, float], dict]:
    """Send one emergency; (API call time, node → actual_at of "started", response)."""
    t0 = time.time()
    out = system.api.call("POST", "/api/emergency", {**body, "targets": {"all": True}})
    answered = time.time() - t0
    started = system.watcher.wait_started(out["item_id"], nodes, timeout, what)
    first = min(started.values(), default=t0) - t0
    console.log(f"{what}: the API answered after {answered:.3f} s; first node started after "
                f"{first:.3f} s")
    return t0, started, out


def stop_emergency(system: System, item: str, nodes: int, settle_s: float) -> None:
    """End the emergency and wait until every node has reported it ended, so the next
    round does not queue behind it (an emergency waits for one already playing)."""
    system.api.call("POST", "/api/emergency/stop", {"targets": {"all": True}})
    ended = {"stopped", "finished", "preempted", "failed", "skipped"}
    deadline = time.monotonic() + 120
    with console.status("waiting for every node to end the emergency"):
        while time.monotonic() < deadline:
            with system.watcher.lock:
                done = sum(1 for e in system.watcher.events.get(item, {}).values() if e in ended)
            if done >= nodes:
                break
            time.sleep(0.1)
    wait_quiet(settle_s, "settling")


RAW_PER_PROCESS = 125
"""Bare threaded paho clients per process: select() cannot watch descriptors past 1,023."""


def idle_cpu_share(system: System, seconds: float) -> float:
    """The share of one core the simulated nodes use while nothing happens."""
    nodes = system.procs[-1].pid  # the `loaxa simulate` process and its workers
    before, t0 = process_tree_cpu_s(nodes), time.monotonic()
    wait_quiet(seconds, f"measuring idle CPU for {seconds:.0f} s")
    return (process_tree_cpu_s(nodes) - before) / (time.monotonic() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--processes", type=int, default=None,
                    help="simulator worker processes "
                         "(default: one per 500 nodes, at most one per core)")
    ap.add_argument("--rounds", type=int, default=5, help="held-clip emergencies")
    ap.add_argument("--fresh-rounds", type=int, default=3, help="fresh-clip emergencies")
    ap.add_argument("--idle-s", type=float, default=30.0, help="idle CPU measurement")
    ap.add_argument("--communes", type=int, default=1,
                    help="spread the nodes over this many communes (a province)")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    n = args.nodes
    processes = args.processes or default_processes(n)
    settle = 3.0 + n / 250
    with tempfile.TemporaryDirectory(prefix="loaxa-fanout-") as tmp, running_system(
            args.workdir or Path(tmp), n, per_zone=50, communes=args.communes) as system:
        raw_processes = max(processes, math.ceil(n / RAW_PER_PROCESS))
        console.log(f"raw broker fan-out to {n} subscribers in {raw_processes} processes")
        raw = raw_fanout(system.fleet, n, raw_processes, rounds=max(args.rounds, 5))
        console.log(f"raw p99 per round: {[round(r, 3) for r in raw]}")
        console.log(f"starting {n} nodes in {processes} processes")
        system.start_nodes(n, processes)
        wait_quiet(settle, "nodes settling")
        idle = idle_cpu_share(system, args.idle_s)
        console.log(f"{n} idle nodes used {idle:.3f} of one core over {args.idle_s:.0f} s")

        fresh_p99, fresh_max, announcement_id = [], [], None
        for r in range(args.fresh_rounds):
            text = STORM_TEXT.format(n=f"{r + 1}.{time.time_ns() % 10_000}")
            t0, started, out = emergency(system, {"text": text, "engine": "espeak-ng"}, n,
                                         120 + n * 0.1, f"fresh clip {r + 1}: started")
            lat = [at - t0 for at in started.values()]
            if len(lat) == n:
                fresh_p99.append(percentile(lat, 99))
                fresh_max.append(max(lat))
            console.log(f"fresh {r + 1}: {len(lat)}/{n} started; p50 {median(lat):.3f} s, "
                        f"p99 {percentile(lat, 99):.3f} s, max {max(lat, default=0):.3f} s")
            announcement_id = out["announcement_id"]
            if r == 0:
                a = system.api.call("GET", f"/api/announcements/{announcement_id}")
                console.log(f"fresh clip: {a['duration_s']:.1f} s, {a['media_size']} bytes, "
                            f"{a['engine_used']}")
            stop_emergency(system, out["item_id"], n, settle)

        p50s, p99s = [], []
        for r in range(args.rounds):
            t0, started, out = emergency(system, {"announcement_id": announcement_id}, n,
                                         60 + n * 0.05, f"held clip {r + 1}: started")
            lat = [at - t0 for at in started.values()]
            if len(lat) == n:
                p50s.append(median(lat))
                p99s.append(percentile(lat, 99))
            console.log(f"held {r + 1}: {len(lat)}/{n} started; p50 {median(lat):.3f} s, "
                        f"p99 {percentile(lat, 99):.3f} s, max {max(lat, default=0):.3f} s")
            stop_emergency(system, out["item_id"], n, settle)

    p99, raw_p99 = median(p99s), median(raw)
    result = {
        "nodes": n, "communes": args.communes, "idle_cpu_share": round(idle, 4),
        "p50_s": round(median(p50s), 4),
        "p99_s": round(p99, 4),
        "raw_p99_s": round(raw_p99, 4), "ratio_p99": round(p99 / raw_p99, 2),
        "fresh_p99_s": round(median(fresh_p99), 4), "fresh_max_s": round(median(fresh_max), 4),
        "processes": processes, "raw_processes": raw_processes, "rounds": len(p99s),
        "fresh_rounds": len(fresh_p99),
        "p99_runs_s": [round(x, 4) for x in p99s], "raw_p99_runs_s": [round(x, 4) for x in raw],
        "fresh_p99_runs_s": [round(x, 4) for x in fresh_p99],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
