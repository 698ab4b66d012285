"""The daily broadcast report: play count and total duration per item, node and zone."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller import localtime
from controller.models import Announcement, Node, PlaybackLog, Schedule
from controller.services.item_ids import schedule_label, schedule_of

COUNTED = ("finished", "preempted", "stopped")
"""A play counts once it ended (whole or cut short); its duration is what really played."""


def item_titles(session: Session) -> dict[int, str]:
    rows = session.execute(select(Schedule.id, Announcement.title, Announcement.text)
                           .join(Announcement))
    return {sid: title or text[:60] for sid, title, text in rows}


def daily_report(session: Session, day: date, tz: str | None = None) -> dict:
    """``day`` is local to ``tz`` (default: the commune's zone)."""
    tz = tz or localtime.zone_name()
    start, end = localtime.day_bounds(day, tz)
    rows = list(session.scalars(select(PlaybackLog).where(
        PlaybackLog.actual_at >= start, PlaybackLog.actual_at < end,
        PlaybackLog.event.in_(COUNTED))))
    zones = {n.node_id: (n.zones or ["-"])[0] for n in session.scalars(select(Node))}
    titles = item_titles(session)
    per: dict[str, dict[str, list[float]]] = {"item": defaultdict(list), "node": defaultdict(list),
                                              "zone": defaultdict(list)}
    for r in rows:
        seconds = r.duration_s or 0.0
        sid = schedule_of(r.item_id)
        label = (f"{schedule_label(r.item_id)} {titles.get(sid, '')}".strip()
                 if sid is not None else r.item_id)
        per["item"][label].append(seconds)
        per["node"][r.node_id].append(seconds)
        per["zone"][zones.get(r.node_id, "-")].append(seconds)
    return {"day": day.isoformat(), "timezone": tz, **{
        f"per_{kind}": [{kind: key, "plays": len(v), "total_s": round(sum(v), 1)}
                        for key, v in sorted(groups.items())]
        for kind, groups in per.items()}}


def report_csv(report: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["day", "group", "key", "plays", "total_s"])
    for kind in ("item", "node", "zone"):
        for row in report[f"per_{kind}"]:
            writer.writerow([report["day"], kind, row[kind], row["plays"], row["total_s"]])
    return out.getvalue()
