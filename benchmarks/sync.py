"""Synchronised start: how closely N nodes of ONE zone start an item due at one instant.

Set-up (all real, on this machine): a synthetic fleet whose N nodes share one zone, the
project-local mosquitto, the controller and N edge agents (WAV file sinks) over P worker
processes. Each round an operator creates an announcement for that zone with an absolute
``start_at`` a few seconds ahead (``POST /api/announcements``); the plan and the audio
reach the nodes, each decodes it ``prepare_ahead_s`` early and starts on the deadline.

**Skew** of a node = |its ``actual_at`` − the median ``actual_at`` of the round|, from
the nodes' own ``started`` reports (they share this machine's clock, so the skew is the
scheduler's and the machine's, not NTP's). ``skew_p50_ms``/``skew_p99_ms``/``skew_max_ms``
are percentiles over the N nodes, median over rounds; ``spread_ms`` is the last start
minus the first (median over rounds), ``late_ms`` the median start minus ``start_at``
(median over rounds), ``skew_max_all_ms`` the worst node of any round.

Usage: ``python benchmarks/sync.py --nodes 100 [--processes P] [--rounds 5]``;
the last line printed is the JSON result.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _harness import console, median, percentile, running_system, wait_quiet

from devtools.simulator import default_processes

TEXT = "Loa thôn {n}: kiểm tra âm thanh, phát cùng lúc trên mọi cụm loa."


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--processes", type=int, default=None,
                    help="simulator worker processes "
                         "(default: one per 500 nodes, at most one per core)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--lead", type=float, default=10.0, help="seconds from request to start")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    n = args.nodes
    processes = args.processes or default_processes(n)
    stats: dict[str, list[float]] = {k: [] for k in ("p50", "p99", "max", "spread", "late")}
    with tempfile.TemporaryDirectory(prefix="loaxa-sync-") as tmp, running_system(
            args.workdir or Path(tmp), n, per_zone=n) as system:
        console.log(f"starting {n} nodes (one zone) in {processes} processes")
        system.start_nodes(n, processes)
        wait_quiet(3.0 + n / 250, "nodes settling")
        for r in range(args.rounds):
            start = (datetime.now(UTC) + timedelta(seconds=args.lead)).replace(microsecond=0)
            a = system.api.call("POST", "/api/announcements", {
                "text": TEXT.format(n=r + 1), "title": f"sync {r + 1}", "engine": "espeak-ng",
                "start_at": start.isoformat(), "zones": ["zone-001"]})
            schedule = a["schedules"][0]
            planned = datetime.fromisoformat(schedule["start_at"]).timestamp()
            item = f"s{schedule['id']}-{int(planned)}"
            started = system.watcher.wait_started(item, n, args.lead + 30 + n * 0.05,
                                                  f"round {r + 1}: started")
            if len(started) < n:
                console.print(f"[red]round {r + 1}: {len(started)}/{n} started; skipped")
            else:
                at = list(started.values())
                mid = median(at)
                skew_ms = [abs(x - mid) * 1000 for x in at]
                stats["p50"].append(median(skew_ms))
                stats["p99"].append(percentile(skew_ms, 99))
                stats["max"].append(max(skew_ms))
                stats["spread"].append((max(at) - min(at)) * 1000)
                stats["late"].append((mid - planned) * 1000)
                console.log(f"round {r + 1}: skew p50 {stats['p50'][-1]:.2f} ms, p99 "
                            f"{stats['p99'][-1]:.2f} ms, max {stats['max'][-1]:.2f} ms, spread "
                            f"{stats['spread'][-1]:.2f} ms, median late "
                            f"{stats['late'][-1]:.2f} ms")
            # let the clip end, so the next round's schedule does not clash with it
            wait_quiet(max(0.0, planned + a["duration_s"] + 1.0 - time.time()), "clip playing")
    print(json.dumps({
        "nodes": n, "skew_p50_ms": round(median(stats["p50"]), 3),
        "skew_p99_ms": round(median(stats["p99"]), 3),
        "skew_max_ms": round(median(stats["max"]), 3),
        "skew_max_all_ms": round(max(stats["max"], default=float("nan")), 3),
        "spread_ms": round(median(stats["spread"]), 3),
        "late_ms": round(median(stats["late"]), 3), "processes": processes,
        "rounds": len(stats["p99"]), "skew_p99_runs_ms": [round(x, 3) for x in stats["p99"]],
    }))


if __name__ == "__main__":
    main()
