"""Plan compile time: a province's nodes × 50 schedules with the real services on SQLite.

What is timed is what ``Runtime.publish_plans`` does before it touches the network: load
the compile context (schedules expanded once over the horizon, holidays, zone quiet hours,
groups), compile every node's plan (which bumps and records its version) and serialise
it to the bytes that go on the wire, then commit. The schedules mix once / RRULE / cron
timings, priorities, and targets all / zones / groups / named nodes, like a commune's
week of announcements. Nodes are spread over communes of ``--per-commune`` (100), zones
of 20 inside them.

A change in one commune (a schedule for all of it edited, a holiday of its own) recompiles
that commune only: ``commune_seconds`` times that, from loading the compile context to the
last plan's bytes, as ``Runtime.publish_plans`` does it for ``Targets(communes=[…])``.

Usage: ``python benchmarks/compile.py [--nodes 1000] [--schedules 50] [--runs 5]
[--per-commune 100]``. The last line of output is a JSON object: ``nodes``,
``schedules``, ``seconds`` (median of the runs: the whole province), ``runs_s`` (each
run), ``plan_items`` (items over all plans, a check that the mix really lands on the
nodes), ``commune_seconds`` (median of the runs), ``commune_nodes`` (plans it made).
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


from controller.db import Database, migrate  # noqa: E402
from controller.domain import Targets  # noqa: E402
from controller.models import Announcement, Node, NodeGroup, Schedule, Zone  # noqa: E402
from controller.services.plans import CompileContext, compile_plans  # noqa: E402

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


def commune_of(zone: int, zones_per_commune: int) -> str:
    return f"xa-{(zone - 1) // zones_per_commune + 1:03d}"


def seed(db: Database, nodes: int, schedules: int, now: datetime, per_commune: int) -> None:
    """Nodes over zones of ``PER_ZONE`` in communes of ``per_commune``, two groups, and
    ``schedules`` active schedules."""
    zones = (nodes + PER_ZONE - 1) // PER_ZONE
    zones_per_commune = max(1, per_commune // PER_ZONE)
    with db.session() as s:
        for z in range(1, zones + 1):
            s.add(Zone(commune=commune_of(z, zones_per_commune), code=f"zone-{z:03d}",
                       name=f"Thôn {z}"))
        for i in range(1, nodes + 1):
            zone = (i - 1) // PER_ZONE + 1
            s.add(Node(commune=commune_of(zone, zones_per_commune), node_id=f"sim-{i:04d}",
                       name=f"Point {i}", zones=[f"zone-{zone:03d}"]))
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


def compile_all(db: Database, targets: list[Targets] | None = None) -> tuple[float, int, int]:
    """One compile, as ``Runtime.publish_plans`` does it: (seconds, items, plans)."""
    items = plans = 0
    t0 = time.perf_counter()
    with db.session() as s:
        ctx = CompileContext.load(s, HORIZON)
        for _, plan in compile_plans(s, ctx, targets):
            plan.to_bytes()
            items += len(plan.items)
            plans += 1
    return time.perf_counter() - t0, items, plans


def one_communes_change(nodes: int, per_commune: int) -> list[Targets]:
    """What a change reaching all of the last commune asks to recompile (a schedule for
    the whole commune edited, a holiday of its own added)."""
    zones = (nodes + PER_ZONE - 1) // PER_ZONE
    return [Targets(all=True, communes=[commune_of(zones, max(1, per_commune // PER_ZONE))])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--schedules", type=int, default=50)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--per-commune", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="loaxa-compile-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        migrate(url)
        db = Database(url)
        try:
            seed(db, args.nodes, args.schedules, datetime.now(UTC), args.per_commune)
            compile_all(db)  # warm-up: imports, zoneinfo and rule caches
            runs, items = [], 0
            for n in range(args.runs):
                seconds, items, _ = compile_all(db)
                runs.append(seconds)
                print(f"run {n + 1}: {seconds:.3f} s, {items} plan items", file=sys.stderr)
            change = one_communes_change(args.nodes, args.per_commune)
            commune_runs, commune_nodes = [], 0
            for n in range(args.runs):
                seconds, _, commune_nodes = compile_all(db, change)
                commune_runs.append(seconds)
                print(f"one commune {n + 1}: {seconds:.3f} s, {commune_nodes} plans",
                      file=sys.stderr)
        finally:
            db.dispose()
    print(json.dumps({"nodes": args.nodes, "schedules": args.schedules,
                      "seconds": round(statistics.median(runs), 4),
                      "runs_s": [round(r, 4) for r in runs], "plan_items": items,
                      "commune_seconds": round(statistics.median(commune_runs), 4),
                      "commune_nodes": commune_nodes}))


if __name__ == "__main__":
    main()
