"""The link to the provincial source information system (Công văn 1273/BTTTT-TTCS).

Inbound, the province's system delivers bulletins: each lands as one **draft** province
announcement (commune None) for the communes it names, remembered by the system's own id
(``upstream_bulletins``: a repeated delivery finds it and changes nothing). Staff or
leaders of the province schedule it on ``Targets(all=True, communes=[...])``; an
``emergency`` may instead go on the air at once (``LOAXA_UPSTREAM_EMERGENCY=air``).
Its validity holds for every schedule of its announcement, whoever makes it: none may
start before ``valid_from``, none may start after ``valid_until``, and a repeating one
ends there (:func:`_hold_schedules_inside_validity`).

Outbound, statistics per commune and local day (:func:`stats`), read through the
caller's session, so a commune account's answer holds its commune only.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from controller import localtime, scope
from controller.domain import DomainError, ScheduleStatus, Targets, TimingKind
from controller.models import (
    Commune,
    LiveBroadcast,
    Node,
    PlaybackLog,
    Schedule,
    Upload,
    UpstreamBulletin,
)
from controller.services import announcements, audit, emergency, item_ids
from controller.services.content import ContentRenderer
from controller.services.reports import BOM, COUNTED, item_titles
from controller.services.schedules import ScheduleError
from mqtt_contract import LiveSource, Priority

AIR = "air"
"""``Settings.upstream_emergency``: an emergency bulletin goes on the air at once."""


class UpstreamError(DomainError):
    """A delivery that cannot be taken (422): ``code`` says which rule, for the system."""

    code = "upstream_refused"


class UnknownCommune(UpstreamError):
    code = "unknown_commune"


class BadValidity(UpstreamError):
    code = "upstream_validity"


class Expired(UpstreamError):
    code = "upstream_expired"


class OutsideValidity(ScheduleError, emergency.EmergencyError):
    """A schedule (or an emergency) of an upstream bulletin outside its validity: refused
    where schedules and emergencies are refused (422 and 409)."""

    code = "outside_validity"


@dataclass(frozen=True)
class Delivery:
    """One bulletin as the upstream system sent it, its audio already stored."""

    account: str
    external_id: str
    title: str
    level: Priority
    communes: list[str]
    text: str | None = None
    recording: str | None = None
    """The sha256 of the stored upload (``audio``), else None (``text``)."""
    valid_from: datetime | None = None
    valid_until: datetime | None = None


@dataclass(frozen=True)
class Received:
    bulletin: UpstreamBulletin
    created: bool
    aired: emergency.Sent | None = None


def targets_of(communes: list[str]) -> Targets:
    """Whom a bulletin reaches: every node of its communes (a province bulletin)."""
    return Targets(all=True, communes=sorted(set(communes)))


def find(session: Session, account: str, external_id: str) -> UpstreamBulletin | None:
    return session.scalar(select(UpstreamBulletin).where(
        UpstreamBulletin.account == account, UpstreamBulletin.external_id == external_id))


def check_communes(session: Session, communes: list[str]) -> None:
    known = set(session.scalars(select(Commune.code).where(Commune.code.in_(communes))))
    if unknown := sorted(set(communes) - known):
        raise UnknownCommune(f"unknown communes {unknown}",
                             f"Không có xã {', '.join(unknown)} trong hệ thống.")


def check_validity(valid_from: datetime | None, valid_until: datetime | None,
                   now: datetime) -> None:
    if valid_from and valid_until and valid_until <= valid_from:
        raise BadValidity("valid_until is not after valid_from",
                          "Thời hạn phát không hợp lệ: giờ kết thúc phải sau giờ bắt đầu.")
    if valid_until and valid_until <= now:
        raise Expired("valid_until has passed",
                      "Bản tin đã hết thời hạn phát nên không được nhận.")


def recording_items(sha256: str) -> list[dict[str, Any]]:
    """A recording as the station airs one: intro chime, the recording, outro chime."""
    return [{"kind": "chime"}, {"kind": "recording", "upload": sha256}, {"kind": "outro"}]


def keep_upload(session: Session, sha256: str, fmt: str, duration_s: float, size: int,
                name: str, actor: str) -> None:
    """The stored audio's row (once per content, as an upload from the page is)."""
    if session.scalar(select(Upload.id).where(Upload.sha256 == sha256,
                                              Upload.commune.is_(None))) is None:
        session.add(Upload(sha256=sha256, format=fmt, duration_s=duration_s, size=size,
                           original_name=name[:255], uploaded_by=actor))
        session.flush()


def receive(session: Session, d: Delivery, renderer: ContentRenderer,
            emergency_mode: str, now: datetime | None = None) -> Received:
    """Take one delivery: the same (account, external id) again returns the first one,
    unchanged; otherwise a draft announcement (rendered now: espeak-ng offline), and for
    an emergency with ``emergency_mode == "air"`` (and inside its validity) the emergency
    at once on every node of its communes, in the upstream account's name."""
    now = now or datetime.now(UTC)
    if (existing := find(session, d.account, d.external_id)) is not None:
        return Received(existing, created=False)
    check_communes(session, d.communes)
    check_validity(d.valid_from, d.valid_until, now)
    items = recording_items(d.recording) if d.recording else None
    a = announcements.create_announcement(
        session, text=d.text, title=d.title, engine="auto", voice="vi", renderer=renderer,
        actor=d.account, items=items)
    row = UpstreamBulletin(account=d.account, external_id=d.external_id,
                           announcement_id=a.id, level=d.level,
                           communes=sorted(set(d.communes)), valid_from=d.valid_from,
                           valid_until=d.valid_until, received_at=now)
    session.add(row)
    session.flush()  # a parallel delivery of the same id fails here (unique)
    audit.record(session, d.account, "upstream_bulletin", "announcement", a.id,
                 external_id=d.external_id, level=d.level, communes=row.communes)
    sent = None
    if (d.level == Priority.emergency and emergency_mode == AIR
            and (d.valid_from is None or d.valid_from <= now)):
        sent = emergency.start_emergency(session, a, targets_of(d.communes), repeat=1,
                                         volume=None, actor=d.account)
    return Received(row, created=True, aired=sent)


# ------------------------------------------------------------------ state of a delivery

def state(session: Session, row: UpstreamBulletin) -> dict[str, Any]:
    """What became of a delivery: its announcement's status, whether it is scheduled
    (an active schedule), whether it aired and on how many nodes (the playback log:
    nodes that played one of its items to the end or were cut short)."""
    a = (announcements.get_announcement(session, row.announcement_id)
         if row.announcement_id is not None else None)
    schedules = list(a.schedules) if a is not None else []
    prefixes = [item_ids.item_prefix(s.id) for s in schedules]
    played: set[str] = set()
    for prefix in prefixes:
        played.update(session.scalars(select(PlaybackLog.node_id).distinct().where(
            PlaybackLog.item_id.startswith(prefix, autoescape=True),
            PlaybackLog.event.in_(COUNTED))))
    return {
        "external_id": row.external_id, "announcement_id": a.id if a else None,
        "level": row.level, "communes": row.communes,
        "targets": targets_of(row.communes).stored(),
        "valid_from": row.valid_from, "valid_until": row.valid_until,
        "received_at": row.received_at,
        "status": a.status.value if a is not None else "deleted",
        "scheduled": any(s.status == ScheduleStatus.active for s in schedules),
        "emergency_sent": any(s.priority == Priority.emergency for s in schedules),
        "aired": bool(played), "nodes_played": len(played),
    }


# ------------------------------------------------------------------ validity holds

def _validity_refusal(s: Schedule, b: UpstreamBulletin) -> OutsideValidity | None:
    if b.valid_from and s.start_at < b.valid_from:
        return OutsideValidity(f"schedule starts before valid_from {b.valid_from}",
                               "Bản tin của hệ thống nguồn chưa đến thời hạn phát: hãy đặt "
                               "giờ phát từ thời điểm bắt đầu hiệu lực.")
    if b.valid_until and s.start_at >= b.valid_until:
        return OutsideValidity(f"schedule starts after valid_until {b.valid_until}",
                               "Bản tin của hệ thống nguồn đã hết thời hạn phát vào giờ này.")
    return None


@event.listens_for(Session, "before_flush")
def _hold_schedules_inside_validity(session: Session, _context: Any, _instances: Any) -> None:
    """Every active schedule of an upstream bulletin's announcement, made by any route:
    refused outside its validity; a repeating one ends at ``valid_until`` at the latest
    (so no plan carries it past that)."""
    pending = [o for o in (*session.new, *session.dirty)
               if isinstance(o, Schedule) and o.status == ScheduleStatus.active]
    if not pending:
        return
    with session.no_autoflush:
        of = {s: s.announcement_id or (s.announcement.id if s.announcement else None)
              for s in pending}
        ids = {aid for aid in of.values() if aid is not None}
        held = {b.announcement_id: b for b in session.scalars(select(UpstreamBulletin).where(
            UpstreamBulletin.announcement_id.in_(ids)))} if ids else {}
    for s, aid in of.items():
        b = held.get(aid)
        if b is None or not (b.valid_from or b.valid_until):
            continue
        if (refusal := _validity_refusal(s, b)) is not None:
            raise refusal
        if b.valid_until and s.kind != TimingKind.once and (
                s.until is None or s.until > b.valid_until):
            s.until = b.valid_until


# ------------------------------------------------------------------ statistics

@dataclass
class _Tally:
    plays: int = 0
    seconds: float = 0.0
    nodes: set[str] | None = None

    def add(self, seconds: float, node: str | None = None) -> None:
        self.plays += 1
        self.seconds += seconds
        if node is not None:
            self.nodes = (self.nodes or set()) | {node}


def _minutes(seconds: float) -> float:
    return round(seconds / 60, 1)


def commune_stats(session: Session, commune: Commune, day: date) -> dict[str, Any]:
    """One commune's local day (in its own time zone).

    - ``clusters_total``: its nodes (cụm loa) registered;
    - ``clusters_online``: of them, online at the time of the request: the node state
      the dashboard shows (the broker's connection status and the node's heartbeats;
      the history of the online samples is province-wide, not per commune);
    - ``clusters_reporting``: nodes that reported a play during the day (they were up);
    - ``broadcasts_aired``: plays counted as the daily report counts them (finished,
      preempted or stopped), with ``minutes`` really played, per item and per node;
    - ``live_minutes`` / ``relay_minutes``: time on the air of live sessions (an
      official's microphone) and relays (tiếp sóng) in the commune: per session the
      longest any of its nodes played it, summed.
    """
    start, end = localtime.day_bounds(day, commune.timezone)
    nodes = list(session.scalars(select(Node).where(Node.commune == commune.code)
                                 .order_by(Node.node_id)))
    rows = list(session.scalars(select(PlaybackLog).where(
        PlaybackLog.commune == commune.code, PlaybackLog.actual_at >= start,
        PlaybackLog.actual_at < end, PlaybackLog.event.in_(COUNTED))))
    titles = item_titles(session)
    per_item: dict[str, _Tally] = defaultdict(_Tally)
    per_node: dict[str, _Tally] = defaultdict(_Tally)
    schedule_of: dict[str, int | None] = {}
    live_longest: dict[str, float] = defaultdict(float)
    for r in rows:
        seconds = r.duration_s or 0.0
        label = item_ids.schedule_label(r.item_id)
        schedule_of[label] = item_ids.schedule_of(r.item_id)
        per_item[label].add(seconds, r.node_id)
        per_node[r.node_id].add(seconds)
        if r.item_id.startswith("live-"):
            live_longest[r.item_id] = max(live_longest[r.item_id], seconds)
    sources = _live_sources(session, set(live_longest))
    relay = [s for i, s in live_longest.items() if sources.get(i) == LiveSource.relay]
    live = [s for i, s in live_longest.items() if sources.get(i) != LiveSource.relay]
    names = {n.node_id: n.name or n.node_id for n in nodes}
    return {
        "commune": commune.code, "name": commune.name, "timezone": commune.timezone,
        "clusters_total": len(nodes), "clusters_online": sum(1 for n in nodes if n.online),
        "clusters_reporting": len(per_node),
        "broadcasts_aired": len(rows), "minutes": _minutes(sum(t.seconds for t in
                                                                per_node.values())),
        "live_sessions": len(live), "live_minutes": _minutes(sum(live)),
        "relay_sessions": len(relay), "relay_minutes": _minutes(sum(relay)),
        "per_item": [{"item": item, "title": _item_title(item, schedule_of[item], titles,
                                                         sources),
                      "plays": t.plays, "nodes": len(t.nodes or ()),
                      "minutes": _minutes(t.seconds)}
                     for item, t in sorted(per_item.items())],
        "per_node": [{"node_id": node, "name": names.get(node, node), "plays": t.plays,
                      "minutes": _minutes(t.seconds)} for node, t in sorted(per_node.items())],
    }


def _live_sources(session: Session, live_items: set[str]) -> dict[str, LiveSource]:
    ids = [i.removeprefix("live-") for i in live_items]
    if not ids:
        return {}
    return {f"live-{b.id}": b.source for b in
            session.scalars(select(LiveBroadcast).where(LiveBroadcast.id.in_(ids)))}


def _item_title(item: str, schedule: int | None, titles: dict[int, str],
                sources: dict[str, LiveSource]) -> str:
    """An item for people: its announcement's title, or which kind of live session."""
    if schedule is not None:
        return titles.get(schedule, "Bản tin")
    return "Tiếp sóng" if sources.get(item) == LiveSource.relay else "Phát trực tiếp"


def stats(session: Session, day: date, commune: str | None = None) -> dict[str, Any]:
    """Every commune the session may see (a commune account: its own; asking for
    another is refused), or only ``commune``; each for its own local ``day``."""
    own = scope.commune_of(session)
    if own is not None and commune not in (None, own):
        raise scope.CommuneRefused(f"stats of {commune} from {own}",
                                   "Tài khoản của xã chỉ xem được số liệu của xã mình.")
    wanted = own or commune
    query = select(Commune).order_by(Commune.code)
    if wanted is not None:
        query = query.where(Commune.code == wanted)
    communes = list(session.scalars(query))
    if wanted is not None and not communes:
        raise UnknownCommune(f"unknown commune {wanted}", f"Không có xã {wanted} trong hệ thống.")
    return {"day": day.isoformat(), "communes": [commune_stats(session, c, day)
                                                 for c in communes]}


CSV_HEADERS = ["Ngày", "Mã xã", "Tên xã", "Mục", "Mã", "Tên", "Số lượng", "Số phút"]
SUMMARY = [("clusters_total", "Cụm loa", None), ("clusters_online", "Cụm loa đang trực tuyến",
                                                 None),
           ("clusters_reporting", "Cụm loa có phát trong ngày", None),
           ("broadcasts_aired", "Lượt phát", "minutes"),
           ("live_sessions", "Phát trực tiếp", "live_minutes"),
           ("relay_sessions", "Tiếp sóng", "relay_minutes")]
"""The summary rows of the CSV: (key, name for people, its minutes' key)."""


def stats_rows(report: dict[str, Any]) -> list[list[object]]:
    """One table: per commune its summary, then each item and each node (count, minutes)."""
    out: list[list[object]] = []
    for c in report["communes"]:
        head = [report["day"], c["commune"], c["name"]]
        out += [[*head, "Tổng hợp", key, name, c[key], c[minutes] if minutes else ""]
                for key, name, minutes in SUMMARY]
        out += [[*head, "Bản tin", i["item"], i["title"], i["plays"], i["minutes"]]
                for i in c["per_item"]]
        out += [[*head, "Cụm loa", n["node_id"], n["name"], n["plays"], n["minutes"]]
                for n in c["per_node"]]
    return out


def stats_csv(report: dict[str, Any]) -> str:
    """UTF-8 with a BOM (Excel then reads the Vietnamese letters), like the daily report."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_HEADERS)
    writer.writerows(stats_rows(report))
    return BOM + buf.getvalue()

