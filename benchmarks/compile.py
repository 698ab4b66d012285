"""Plan compile time: 1,000 nodes × 50 schedules with the real services on SQLite.

What is timed is what ``Runtime.publish_plans`` does before it touches the network: load
the compile context (schedules expanded once over the horizon, holidays, zone quiet hours,
groups), compile every node's plan (which bumps and records its version) and serialise
it to the bytes that go on the wire, then commit. The schedules mix once / RRULE / cron
timings, priorities, and targets all / zones / groups / named nodes, like a commune's
week of announcements.

Usage: ``python benchmarks/compile.py [--nodes 1000] [--schedules 50] [--runs 5]``.
The last line of output is a JSON object: ``nodes``, ``schedules``, ``seconds`` (median
of the runs), ``runs_s`` (each run), ``plan_items`` (items over all plans, a check that
the mix really lands on the nodes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select  # noqa: E402

from controller.db import Database, migrate  # noqa: E402
from controller.domain import Targets  # noqa: E402
from controller.models import Announcement, Node, NodeGroup, Schedule, Zone  # noqa: E402
from controller.services.plans import CompileContext, compile_plan  # noqa: E402

COMMUNE = "xa-bench"
PER_ZONE = 20
HORIZON = timedelta(hours=48)
TIMINGS = [
    ("once", None),
    ("rrule", "FREQ=DAILY;BYHOUR=6,17;BYMINUTE=30;BYSECOND=0"),
    ("rrule", "FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=7;BYMINUTE=0;BYSECOND=0"),
    ("cron", "0 */2 * * *"),
    ("cron", "15 6,11,17 * * 1-6"),
]
PRIORITIES = ["ordinary", "priority", "priority", "ordinary", "emergency"]


def seed(db: Database, nodes: int, schedules: int, now: datetime) -> None:
    """Nodes over zones of ``PER_ZONE``, two groups, and ``schedules`` active schedules."""
    zones = (nodes + PER_ZONE - 1) // PER_ZONE
    with db.session() as s:
        for z in range(1, zones + 1):
            s.add(Zone(commune=COMMUNE, code=f"zone-{z:03d}", name=f"Thôn {z}"))
        for i in range(1, nodes + 1):
            s.add(Node(commune=COMMUNE, node_id=f"sim-{i:04d}", name=f"Point {i}",
                       zones=[f"zone-{(i - 1) // PER_ZONE + 1:03d}"]))
        s.add(NodeGroup(name="market", node_ids=[f"sim-{i:04d}" for i in range(1, nodes, 7)]))
        s.add(NodeGroup(name="school", node_ids=[f"sim-{i:04d}" for i in range(3, nodes, 11)]))
        for k in range(schedules):
            a = Announcement(text=f"Thông báo số {k} của UBND xã về tiêm chủng và dịch vụ "
                             "công trực tuyến.", title=f"Thông báo {k}", status="scheduled",
                             media_sha256=f"{k:064x}", media_size=90_000 + k,
                             media_codec="mp3", duration_s=20.0 + k % 30)
            s.add(a)
            s.flush()
            kind, rule = TIMINGS[k % len(TIMINGS)]
            if k % 4 == 0:
                targets: dict = {"all": True}
            elif k % 4 == 1:
                targets = {"zones": [f"zone-{(k * 7) % zones + 1:03d}",
                                     f"zone-{(k * 13) % zones + 1:03d}"]}
            elif k % 4 == 2:
                targets = {"nodes": [f"sim-{(k * 37 + j) % nodes + 1:04d}" for j in range(25)]}
            else:
                targets = {"groups": ["market" if k % 8 == 3 else "school"]}
            start = now + timedelta(minutes=10 + 17 * k) if kind == "once" else (
                now - timedelta(days=1))
            s.add(Schedule(announcement_id=a.id, targets=Targets.model_validate(targets),
                           kind=kind, start_at=start,
                           rule=rule, priority=PRIORITIES[k % len(PRIORITIES)], repeat=1,
                           sequence=k % 3, status="active", created_by="bench"))


def compile_all(db: Database) -> tuple[float, int]:
    """One full compile, as ``Runtime.publish_plans`` does it; (seconds, items)."""
    items = 0
    t0 = time.perf_counter()
    with db.session() as s:
        ctx = CompileContext.load(s, HORIZON)
        for node in s.scalars(select(Node)):
            plan = compile_plan(s, node, ctx)
            plan.to_bytes()
            items += len(plan.items)
    return time.perf_counter() - t0, items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--schedules", type=int, default=50)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="loaxa-compile-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        migrate(url)
        db = Database(url)
        try:
            seed(db, args.nodes, args.schedules, datetime.now(UTC))
            compile_all(db)  # warm-up: imports, zoneinfo and rule caches
            runs, items = [], 0
            for n in range(args.runs):
                seconds, items = compile_all(db)
                runs.append(seconds)
                print(f"run {n + 1}: {seconds:.3f} s, {items} plan items", file=sys.stderr)
        finally:
            db.dispose()
    print(json.dumps({"nodes": args.nodes, "schedules": args.schedules,
                      "seconds": round(statistics.median(runs), 4),
                      "runs_s": [round(r, 4) for r in runs], "plan_items": items}))


if __name__ == "__main__":
    main()
