"""What the pages show, shaped from the services: Vietnamese labels, local times, the
village map, today's programme and the week view. No HTTP here, so it is easy to test."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller import security
from controller.domain import PLAYABLE, Targets
from controller.localtime import day_bounds, local
from controller.models import Node, Schedule, Zone
from controller.services import schedules as schedule_service
from controller.services.alerts import KIND_LABELS
from controller.services.calendar import zone_label
from controller.services.deliveries import deliveries_for
from controller.services.item_ids import item_id, schedule_of
from controller.services.plans import timing_of
from controller.services.timing import occurrences, times_of_day
from controller.services.users import full_names

ROLE_LABELS = {role.value: label for role, label in security.ROLE_LABELS.items()}
STATUS_LABELS = {"draft": "Nháp", "submitted": "Chờ duyệt", "approved": "Đã duyệt",
                 "scheduled": "Đã lên lịch", "cancelled": "Đã huỷ", "active": "Đang áp dụng"}
PRIORITY_LABELS = {"ordinary": "Thông thường", "priority": "Ưu tiên", "live": "Trực tiếp",
                   "emergency": "Khẩn cấp"}
DELIVERY_LABELS = {"planned": "Đã lập kế hoạch", "delivered": "Loa đã nhận",
                   "started": "Đang phát", "finished": "Đã phát xong", "failed": "Lỗi",
                   "preempted": "Bị ngắt", "stopped": "Đã dừng", "skipped": "Bỏ qua",
                   "cancelled": "Đã huỷ", "waiting": "Chưa được duyệt"}
ALERT_STATE_LABELS = {"new": "Mới", "acknowledged": "Đã tiếp nhận", "resolved": "Đã xử lý",
                      "false_alarm": "Báo động giả"}
ALERT_KIND_LABELS = KIND_LABELS
KIND_LABELS = {"once": "Một lần", "rrule": "Lặp lại", "cron": "Lặp lại (cron)"}
WEEKDAYS = ["Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật"]
RRULE_DAYS = {"MO": "T2", "TU": "T3", "WE": "T4", "TH": "T5", "FR": "T6", "SA": "T7",
              "SU": "CN"}


def fmt_time(dt: datetime | None, pattern: str = "%H:%M %d/%m/%Y") -> str:
    return local(dt).strftime(pattern) if dt is not None else "—"  # type: ignore[union-attr]


def fmt_iso(value: str | None, pattern: str = "%H:%M:%S %d/%m/%Y") -> str:
    """An ISO timestamp from an alert event, on the local wall clock."""
    return fmt_time(datetime.fromisoformat(value), pattern) if value else "—"


def next_occurrence(s: Schedule, now: datetime | None = None) -> datetime | None:
    now = now or datetime.now(UTC)
    found = occurrences(timing_of(s), now, now + timedelta(days=400))
    return found[0] if found else None


def ago(dt: datetime | None, now: datetime | None = None) -> str:
    """"3 phút trước": how fresh a node's last word is matters more than the clock time."""
    if dt is None:
        return "chưa bao giờ"
    seconds = max(0, int(((now or datetime.now(UTC)) - dt).total_seconds()))
    if seconds < 60:
        return f"{seconds} giây trước"
    if seconds < 3600:
        return f"{seconds // 60} phút trước"
    if seconds < 86400:
        return f"{seconds // 3600} giờ trước"
    return f"{seconds // 86400} ngày trước"


def describe_targets(targets: Targets, zone_names: dict[str, str] | None = None,
                     node_names: dict[str, str] | None = None) -> str:
    """Whom it reaches, by the names people gave zones and nodes (a code only when a
    zone or node has no name yet)."""
    if targets.all:
        return "Tất cả cụm loa"
    zones, nodes = zone_names or {}, node_names or {}
    parts = []
    if targets.zones:
        parts.append("Thôn/khu: " + ", ".join(zones.get(z) or zone_label(z)
                                               for z in targets.zones))
    if targets.groups:
        parts.append("Nhóm: " + ", ".join(targets.groups))
    if targets.nodes:
        parts.append("Cụm loa: " + ", ".join(nodes.get(n) or n for n in targets.nodes))
    return "; ".join(parts) or "—"


def target_namer(session: Session) -> Callable[[Targets], str]:
    """``describe_targets`` with this commune's zone and node names, for a template."""
    zones = {z.code: z.name for z in session.scalars(select(Zone)) if z.name}
    nodes = {n.node_id: n.name for n in session.scalars(select(Node)) if n.name}
    return lambda targets: describe_targets(targets, zones, nodes)


def describe_rule(s: Schedule) -> str:
    """A schedule's timing in words staff recognise ("T2, T6 lúc 06:30, 17:00")."""
    start = local(s.start_at)
    assert start is not None
    if s.kind == "once":
        return f"Một lần, {start:%H:%M %d/%m/%Y}"
    if s.kind == "cron":
        return f"cron {s.rule}"
    lines = [line.strip().upper().removeprefix("RRULE:")
             for line in (s.rule or "").splitlines() if line.strip()]
    parts = dict(p.split("=", 1) for p in (lines[0] if lines else "").split(";") if "=" in p)
    times = times_of_day(s.rule)
    at = ", ".join(f"{t:%H:%M}" for t in times) if times else f"{start:%H:%M}"
    if parts.get("COUNT") == "1":
        return f"Một lần, {at} ngày {start:%d/%m/%Y}"
    if parts.get("FREQ") == "DAILY":
        text = "Hằng ngày"
    elif parts.get("FREQ") == "WEEKLY":
        days = [RRULE_DAYS.get(d.strip()[-2:], d) for d in parts.get("BYDAY", "").split(",") if d]
        text = "Hằng tuần " + ", ".join(days) if days else "Hằng tuần"
    else:
        text = s.rule or ""
    until = f" đến {fmt_time(s.until, '%d/%m/%Y')}" if s.until else ""
    return f"{text} lúc {at}{until}".strip()


# ------------------------------------------------------------------------------------ map

@dataclass
class MapPoint:
    node_id: str
    name: str
    online: bool
    x: float
    y: float
    label_left: bool = False


@dataclass
class VillageMap:
    width: int
    height: int
    points: list[MapPoint] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """Nodes without coordinates: listed under the map, not guessed onto it."""


def village_map(nodes: list[Node], width: int = 640, height: int = 380,
                pad: int = 48) -> VillageMap:
    """Project the nodes' lat/lon onto an SVG (equirectangular, with longitude scaled by
    cos(latitude) so distances look right at 20°N). No tiles: the controller may have no
    internet, and the points themselves are what staff need to see."""
    placed = [n for n in nodes if n.lat is not None and n.lon is not None]
    out = VillageMap(width, height, missing=[n.node_id for n in nodes if n not in placed])
    if not placed:
        return out
    lat0 = sum(n.lat for n in placed) / len(placed)  # type: ignore[misc]
    k = math.cos(math.radians(lat0))
    xs = [n.lon * k for n in placed]  # type: ignore[operator]
    ys = [n.lat for n in placed]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-4)
    scale = min((width - 2 * pad) / span, (height - 2 * pad) / span)
    cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2  # type: ignore[type-var]
    for n, x, y in zip(placed, xs, ys, strict=True):
        px = width / 2 + (x - cx) * scale
        py = height / 2 - (y - cy) * scale  # type: ignore[operator]
        out.points.append(MapPoint(n.node_id, n.name or n.node_id, n.online, round(px, 1),
                                   round(py, 1), label_left=px > width * 0.7))
    return out


# ------------------------------------------------------------------------ the programme

@dataclass
class ProgrammeItem:
    item_id: str
    schedule_id: int
    announcement_id: int
    title: str
    at: datetime
    priority: str
    announcement_status: str
    targets: str
    nodes: int
    statuses: dict[str, int]

    @property
    def summary(self) -> str:
        return ", ".join(f"{DELIVERY_LABELS.get(k, k)}: {v}"
                         for k, v in sorted(self.statuses.items())) or "—"


def programme(session: Session, start: datetime, end: datetime) -> list[ProgrammeItem]:
    """Every occurrence of an active schedule in [start, end) with each node's delivery and
    playback state rolled up: what staff expect to hear, and whether it was heard."""
    schedules = [s for s in schedule_service.list_schedules(session)
                 if s.announcement.status != "cancelled"]
    by_id = {s.id: s for s in schedules}
    describe = target_namer(session)
    rows: dict[str, ProgrammeItem] = {}
    for d in deliveries_for(session, schedules, start, end):
        s = by_id[d.schedule_id]
        item = rows.get(d.item_id)
        if item is None:
            item = rows[d.item_id] = ProgrammeItem(
                d.item_id, s.id, s.announcement_id,
                s.announcement.title or s.announcement.text[:60], d.planned_at, s.priority,
                s.announcement.status, describe(s.targets), 0, {})
        item.nodes += 1
        status = d.status if s.announcement.status in PLAYABLE or d.status not in (
            "planned", "delivered") else "waiting"
        item.statuses[status] = item.statuses.get(status, 0) + 1
    # occurrences whose targets match no node still belong on the programme
    for s in schedules:
        for at in occurrences(timing_of(s), start, end):
            iid = item_id(s.id, at)
            rows.setdefault(iid, ProgrammeItem(
                iid, s.id, s.announcement_id, s.announcement.title or s.announcement.text[:60],
                at, s.priority, s.announcement.status, describe(s.targets), 0, {}))
    return sorted(rows.values(), key=lambda i: (i.at, i.schedule_id))


def week_view(session: Session, any_day: date) -> tuple[date, list[tuple[date, list]]]:
    """Monday of ``any_day``'s week and, for each of its 7 days, that day's occurrences."""
    monday = any_day - timedelta(days=any_day.weekday())
    start, _ = day_bounds(monday)
    end, _ = day_bounds(monday + timedelta(days=7))
    per_day: dict[date, list[tuple[datetime, Schedule]]] = defaultdict(list)
    for s in schedule_service.list_schedules(session):
        if s.announcement.status == "cancelled":
            continue
        for at in occurrences(timing_of(s), start, end):
            per_day[local(at).date()].append((at, s))  # type: ignore[union-attr]
    days = [monday + timedelta(days=i) for i in range(7)]
    return monday, [(d, sorted(per_day[d], key=lambda p: (p[0], p[1].id))) for d in days]



PLAYING_KINDS = {"test tone": "Tiếng thử loa"}


def describe_playing(value: str | None, titles: dict[int, str]) -> str:
    """What a node's telemetry says it plays, in words: an item's announcement title (the
    node reports the item id of a command-started item), never an id."""
    if not value:
        return "—"
    if (sid := schedule_of(value)) is not None:
        return titles.get(sid, "Bản tin")
    if value in PLAYING_KINDS:
        return PLAYING_KINDS[value]
    if value.startswith("reminder"):
        return "Nhắc nhở từ camera"
    return value


def people_names(session: Session) -> dict[str, str]:
    """Username → the person's full name (the pages name people, not accounts)."""
    return full_names(session)


def zone_choices(session: Session, nodes: list[Node]) -> list[tuple[str, str, int]]:
    """(zone code, its name for people, how many nodes it has), for target pickers."""
    counts: dict[str, int] = defaultdict(int)
    for n in nodes:
        for z in n.zones or ():
            counts[z] += 1
    named = {z.code: z.name for z in session.scalars(select(Zone)) if z.name}
    return [(code, named.get(code) or zone_label(code), counts[code])
            for code in sorted(counts)]
