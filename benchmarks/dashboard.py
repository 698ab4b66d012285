"""The dashboard's 30-day summaries on SQLite: plays and minutes per day and alerts per
day by kind, over a month of a big commune's reports.

What is timed is ``controller/services/stats.py`` as the dashboard calls it (once a minute
per controller: the page caches the charts for ``GLANCE_TTL_S``): sums per UTC hour in
the database, mapped to local days here.

Usage: ``python benchmarks/dashboard.py [--plays 300000] [--alerts 30000] [--runs 5]``.
The last line of output is a JSON object: ``plays``, ``alerts``, ``airing_s`` and
``alerts_s`` (medians of the runs), ``plays_counted`` (a check that the window holds them).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from controller import localtime  # noqa: E402
from controller.db import Database, migrate  # noqa: E402
from controller.models import CameraAlertRecord, PlaybackLog  # noqa: E402
from controller.services import stats  # noqa: E402

WINDOW_S = 29 * 86400


def seed(db: Database, plays: int, alerts: int, now: datetime) -> None:
    rng = random.Random(7)

    def when() -> datetime:
        return now - timedelta(seconds=rng.randint(0, WINDOW_S))

    with db.session() as s:
        s.execute(insert(PlaybackLog), [dict(
            report_id=f"r{i}", commune="xa-bench", node_id=f"node-{i % 1000}",
            item_id=f"s{i % 50}-{i}", event="finished", planned_at=(at := when()),
            actual_at=at, duration_s=60.0, detail="", received_at=now) for i in range(plays)])
        s.execute(insert(CameraAlertRecord), [dict(
            alert_id=f"a{i}", commune="xa-bench", node_id=f"node-{i % 1000}", camera="cong",
            kind=rng.choice(["no_helmet", "dumping", "motion_in_zone"]), at=when(),
            confidence=0.8, boxes=[], state="new", received_at=now, note="")
            for i in range(alerts)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plays", type=int, default=300_000)
    parser.add_argument("--alerts", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    localtime.configure("Asia/Ho_Chi_Minh")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.sqlite3"
        migrate(url)
        db = Database(url)
        seed(db, args.plays, args.alerts, datetime.now(UTC))
        days = stats.days_ending(localtime.today())
        airing, alerting, counted = [], [], 0
        for _ in range(args.runs):
            with db.session() as s:
                t = time.perf_counter()
                counted = sum(d.plays for d in stats.airing_per_day(s, days))
                airing.append(time.perf_counter() - t)
                t = time.perf_counter()
                stats.alerts_per_day(s, days)
                alerting.append(time.perf_counter() - t)
        db.dispose()
    print(json.dumps({"plays": args.plays, "alerts": args.alerts,
                      "airing_s": round(statistics.median(airing), 3),
                      "alerts_s": round(statistics.median(alerting), 3),
                      "plays_counted": counted}))


if __name__ == "__main__":
    main()
