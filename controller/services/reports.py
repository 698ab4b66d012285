"""The daily broadcast report: play count and total duration per item, node and zone."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller import localtime
from controller.models import Announcement, Node, PlaybackLog, Schedule, Zone
from controller.services.calendar import zone_label
from controller.services.item_ids import schedule_label, schedule_of

COUNTED = ("finished", "preempted", "stopped")
"""A play counts once it ended (whole or cut short); its duration is what really played."""


def item_titles(session: Session) -> dict[int, str]:
    rows = session.execute(select(Schedule.id, Announcement.title, Announcement.text)
                           .join(Announcement))
    return {sid: title or text[:60] for sid, title, text in rows}


def live_titles(session: Session, item_ids: set[str]) -> dict[str, str]:
    """Live sessions and relays by item id, named for people."""
    from controller.models import LiveBroadcast
    from mqtt_contract import LiveSource, live_item_id

    ids = [i.removeprefix("live-") for i in item_ids if i.startswith("live-")]
    rows = session.scalars(select(LiveBroadcast).where(LiveBroadcast.id.in_(ids))) if ids else []
    return {live_item_id(b.id): ("Tiếp sóng" if b.source == LiveSource.relay
                                 else "Phát trực tiếp") + (f": {b.title}" if b.title else "")
            for b in rows}


GROUPS = {"item": "Bản tin", "node": "Cụm loa", "zone": "Thôn/khu"}
"""The report's three views and their names for people (CSV, Excel)."""
HEADERS = ["Kỳ báo cáo", "Theo", "Tên", "Số lần phát", "Tổng thời lượng (phút)"]
BOM = "\ufeff"
"""Excel opens a CSV as UTF-8 (Vietnamese letters intact) only when it starts with one."""


def daily_report(session: Session, day: date, tz: str | None = None) -> dict:
    """``day`` is local to ``tz`` (default: the commune's zone)."""
    return period_report(session, day, day, tz)


def monthly_report(session: Session, year: int, month: int, tz: str | None = None) -> dict:
    first = date(year, month, 1)
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return period_report(session, first, last, tz)


def period_report(session: Session, first: date, last: date, tz: str | None = None) -> dict:
    """Plays and minutes per announcement, node and zone from ``first`` to ``last`` (local
    days, both included), each named for people; ids stay beside the names for programs."""
    tz = tz or localtime.zone_name()
    start, _ = localtime.day_bounds(first, tz)
    _, end = localtime.day_bounds(last, tz)
    rows = list(session.scalars(select(PlaybackLog).where(
        PlaybackLog.actual_at >= start, PlaybackLog.actual_at < end,
        PlaybackLog.event.in_(COUNTED))))
    nodes = {n.node_id: n for n in session.scalars(select(Node))}
    zone_names = {z.code: z.name for z in session.scalars(select(Zone)) if z.name}
    titles = item_titles(session)
    live = live_titles(session, {r.item_id for r in rows if schedule_of(r.item_id) is None})
    per: dict[str, dict[str, list[float]]] = {k: defaultdict(list) for k in GROUPS}
    names: dict[str, dict[str, str]] = {k: {} for k in GROUPS}
    for r in rows:
        seconds = r.duration_s or 0.0
        sid = schedule_of(r.item_id)
        item = schedule_label(r.item_id)
        names["item"][item] = (titles.get(sid, "Bản tin") if sid is not None
                               else live.get(r.item_id, "Phát trực tiếp"))
        node = nodes.get(r.node_id)
        zone = (node.zones or ["-"])[0] if node else "-"
        names["zone"][zone] = zone_names.get(zone) or zone_label(zone)
        names["node"][r.node_id] = (node.name if node and node.name
                                    else f"Cụm loa chưa đặt tên ({names['zone'][zone]})")
        per["item"][item].append(seconds)
        per["node"][r.node_id].append(seconds)
        per["zone"][zone].append(seconds)
    period = first.isoformat() if first == last else f"{first.isoformat()}/{last.isoformat()}"
    return {"day": first.isoformat(), "period": period, "timezone": tz, **{
        f"per_{kind}": [{kind: key, "name": names[kind][key], "plays": len(v),
                         "total_s": round(sum(v), 1)}
                        for key, v in sorted(groups.items(), key=lambda kv: names[kind][kv[0]])]
        for kind, groups in per.items()}}


def report_rows(report: dict) -> list[list[object]]:
    """The rows a person reads: period, view, name, plays, minutes."""
    period = report["period"].replace("/", " – ")
    return [[period, GROUPS[kind], row["name"], row["plays"], round(row["total_s"] / 60, 1)]
            for kind in GROUPS for row in report[f"per_{kind}"]]


def report_csv(report: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADERS)
    writer.writerows(report_rows(report))
    return BOM + out.getvalue()


def report_xlsx(report: dict) -> bytes:
    """One sheet per view (announcements, nodes, villages), headers bold, widths set."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    rows = report_rows(report)
    for label in GROUPS.values():
        sheet = book.create_sheet(label.replace("/", "-"))
        sheet.append(HEADERS)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            if row[1] == label:
                sheet.append(row)
        for column, width in zip("ABCDE", (24, 12, 48, 14, 24), strict=True):
            sheet.column_dimensions[column].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
