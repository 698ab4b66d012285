"""Camera alerts from nodes: stored once by id, snapshot kept as a content-addressed file;
the officers' lifecycle (new → acknowledged → resolved | false alarm); and the in-process
hub that pushes each new alert to the open alert desks (Server-Sent Events).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controller.domain import AlertAction, AlertState
from controller.localtime import day_bounds
from controller.media_store import MediaStore
from controller.models import CameraAlertRecord, Node
from controller.services import audit
from mqtt_contract import Alert, ContractError

log = logging.getLogger(__name__)
JPEG_MAGIC = b"\xff\xd8\xff"

STATES = tuple(AlertState)
KIND_LABELS = {"no_helmet": "Không đội mũ bảo hiểm", "motion": "Phát hiện chuyển động",
               "motion_in_zone": "Chuyển động trong vùng theo dõi",
               "littering": "Xả rác", "dumping": "Đổ rác", "intrusion": "Xâm nhập"}
"""Alert kinds in words (pages, evidence pictures, the audit log): the one list."""
STATE_WORDS = {AlertState.new: "mới", AlertState.acknowledged: "tiếp nhận",
               AlertState.resolved: "đã xử lý", AlertState.false_alarm: "báo động giả"}
"""A step's name in the notes officers read on the card."""
OPEN = frozenset({AlertState.new, AlertState.acknowledged})
TRANSITIONS: dict[AlertAction, tuple[frozenset[AlertState], AlertState]] = {
    # action: (states it may start from, state it leads to)
    AlertAction.acknowledge: (frozenset({AlertState.new}), AlertState.acknowledged),
    AlertAction.resolve: (OPEN, AlertState.resolved),
    AlertAction.false_alarm: (OPEN, AlertState.false_alarm),
}
"""An officer on the spot may close an alert without acknowledging it first; a closed
alert stays closed (a second officer's late click is a 409, not a silent overwrite)."""


class AlertTransitionError(ValueError):
    """Not allowed from the alert's current state (409)."""


class ReasonRequired(ValueError):
    """A false alarm needs a short reason (422): the count of detector mistakes is only
    useful with what fooled it ("bóng cây", "người đi bộ dắt xe")."""


def decode_snapshot(b64: str) -> bytes:
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ContractError(f"snapshot is not base64: {exc}") from None
    if not data.startswith(JPEG_MAGIC):
        raise ContractError("snapshot is not a JPEG")
    return data


def store_alert(session: Session, commune: str, alert: Alert,
                store: MediaStore) -> CameraAlertRecord | None:
    """Store ``alert`` once and return its row; None when its id is already known (a replay,
    or another controller replica stored it first)."""
    if session.scalar(select(CameraAlertRecord.id).where(CameraAlertRecord.alert_id == alert.id)):
        return None
    snapshot = None
    if alert.snapshot_jpeg_b64:
        snapshot, _ = store.add_bytes(decode_snapshot(alert.snapshot_jpeg_b64), "jpg")
    before = None
    if alert.before_jpeg_b64:
        before, _ = store.add_bytes(decode_snapshot(alert.before_jpeg_b64), "jpg")
    record = CameraAlertRecord(
        alert_id=alert.id, commune=commune, node_id=alert.node, camera=alert.camera,
        kind=alert.kind, at=alert.at, confidence=alert.confidence,
        boxes=[b.model_dump() for b in alert.boxes], snapshot_sha256=snapshot,
        before_sha256=before, state=AlertState.new,
        note="")
    try:
        with session.begin_nested():
            session.add(record)
    except IntegrityError:
        return None
    return record


def record_alert(session: Session, commune: str, alert: Alert, store: MediaStore) -> bool:
    """Store ``alert`` once; False when its id is already known (a replay)."""
    return store_alert(session, commune, alert, store) is not None


def zone_nodes(session: Session, zone: str) -> list[str]:
    """Ids of the nodes in ``zone`` (a node may sit in several zones, so this is looked up
    rather than copied onto each alert)."""
    return [n.node_id for n in session.scalars(select(Node)) if zone in (n.zones or ())]


def list_alerts(session: Session, *, node: str | None = None, camera: str | None = None,
                kind: str | None = None, state: str | None = None, zone: str | None = None,
                since: datetime | None = None, until: datetime | None = None,
                day: date | None = None, limit: int = 100) -> list[CameraAlertRecord]:
    q = select(CameraAlertRecord).order_by(CameraAlertRecord.at.desc()).limit(limit)
    filters = {"node_id": node, "camera": camera, "kind": kind, "state": state}
    for column, value in filters.items():
        if value:  # an empty filter field means "any"
            q = q.where(getattr(CameraAlertRecord, column) == value)
    if zone:
        q = q.where(CameraAlertRecord.node_id.in_(zone_nodes(session, zone)))
    if day is not None:
        start, end = day_bounds(day)  # officers think in local days, rows are UTC
        q = q.where(CameraAlertRecord.at >= start, CameraAlertRecord.at < end)
    if since is not None:
        q = q.where(CameraAlertRecord.at >= since)
    if until is not None:
        q = q.where(CameraAlertRecord.at < until)
    return list(session.scalars(q))


def catch_up(session: Session, after_row: int, received_after: datetime,
             limit: int = 200) -> list[CameraAlertRecord]:
    """Alerts stored after row ``after_row`` and received after ``received_after``, oldest
    first: how an open desk picks up alerts that another controller replica ingested (the
    shared subscription gives each alert to one replica) or that its stalled connection
    dropped. The time bound keeps each poll small; callers skip rows they already sent."""
    return list(session.scalars(
        select(CameraAlertRecord).where(CameraAlertRecord.id > after_row,
                                        CameraAlertRecord.received_at > received_after)
        .order_by(CameraAlertRecord.id).limit(limit)))


def last_row(session: Session) -> int:
    return session.scalar(select(func.max(CameraAlertRecord.id))) or 0


def newer_than(session: Session, row_id: int, limit: int = 200) -> list[CameraAlertRecord]:
    """Alerts stored after row ``row_id``: replayed to a desk that reconnects with
    ``Last-Event-ID``, so a dropped phone connection loses nothing."""
    return list(session.scalars(
        select(CameraAlertRecord).where(CameraAlertRecord.id > row_id)
        .order_by(CameraAlertRecord.id).limit(limit)))


def get_alert(session: Session, alert_id: str) -> CameraAlertRecord | None:
    return session.scalar(select(CameraAlertRecord).where(CameraAlertRecord.alert_id == alert_id))


def transition(session: Session, record: CameraAlertRecord, action: AlertAction | str,
               actor: str, note: str = "") -> CameraAlertRecord:
    """Move an alert along its lifecycle, recording who, when and the note."""
    action = AlertAction(action)
    if action == AlertAction.false_alarm and not note.strip():
        raise ReasonRequired("a false alarm needs a reason")
    allowed_from, target = TRANSITIONS[action]
    if record.state not in allowed_from:
        raise AlertTransitionError(
            f"cannot {action.replace('_', ' ')} an alert that is {record.state} "
            f"(only from {', '.join(sorted(allowed_from))})")
    now = datetime.now(UTC)
    before = record.state
    record.state = target
    if action == AlertAction.acknowledge:
        record.acknowledged_by, record.acknowledged_at = actor, now
    else:
        record.handled_by, record.handled_at = actor, now
    note = " ".join(note.split())
    if note:
        from controller.models import User

        who = session.scalar(select(User.full_name).where(User.username == actor)) or actor
        line = f"{who} – {STATE_WORDS[target]}: {note}"
        record.note = f"{record.note}\n{line}" if record.note else line
    audit.record(session, actor, f"alert_{action}", "alert", record.alert_id, before=before,
                 after=target, note=note or None)
    return record


def history(session: Session, alert_id: str) -> list[Any]:
    return audit.history(session, "alert", alert_id)


@dataclass(frozen=True)
class AlertLabels:
    """Names for an alert card, looked up once per batch of alerts: nodes (with their
    zones' codes, for the desk's zone filter), zones, cameras and people by name."""

    nodes: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    zones: dict[str, str] = field(default_factory=dict)
    cameras: dict[tuple[str, str], str] = field(default_factory=dict)
    people: dict[str, str] = field(default_factory=dict)

    def node(self, node_id: str) -> tuple[str, list[str]]:
        return self.nodes.get(node_id, ("Cụm loa chưa đăng ký", []))

    def camera(self, node_id: str, camera: str) -> str:
        return self.cameras.get((node_id, camera), camera)

    def place(self, node_id: str) -> str:
        """"Thôn 1 – Nhà văn hoá (Thôn Đông)": the node and its villages, by name."""
        name, zones = self.node(node_id)
        return f"{name} ({', '.join(self.zones.get(z, z) for z in zones)})" if zones else name


def labels(session: Session) -> AlertLabels:
    from controller.models import Zone
    from controller.services.calendar import zone_label
    from controller.services.users import full_names

    nodes = list(session.scalars(select(Node)))
    named = {z.code: z.name for z in session.scalars(select(Zone)) if z.name}
    codes = {z for n in nodes for z in n.zones or ()} | set(named)
    return AlertLabels(
        nodes={n.node_id: (n.name or "Cụm loa chưa đặt tên", list(n.zones or ())) for n in nodes},
        zones={code: named.get(code) or zone_label(code) for code in codes},
        cameras={(n.node_id, cam): name for n in nodes
                 for cam, name in (n.camera_names or {}).items()},
        people=full_names(session))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def event_of(record: CameraAlertRecord, names: AlertLabels | None = None) -> dict[str, Any]:
    """What a desk needs to draw (or redraw) an alert card: JSON-ready, no secrets, every
    thing by its name (``*_name``) beside its id (for the filters)."""
    names = names or AlertLabels()
    name, zones = names.node(record.node_id)
    return {
        "kind_label": KIND_LABELS.get(record.kind, "Cảnh báo camera"),
        "zone_names": [names.zones.get(z, z) for z in zones],
        "camera_name": names.camera(record.node_id, record.camera),
        "acknowledged_by_name": names.people.get(record.acknowledged_by or "",
                                                 record.acknowledged_by),
        "handled_by_name": names.people.get(record.handled_by or "", record.handled_by),
        "evidence_url": (f"/api/alerts/{record.alert_id}/evidence"
                         if record.snapshot_sha256 else None),
        "row": record.id, "alert_id": record.alert_id, "commune": record.commune,
        "node_id": record.node_id, "node_name": name, "zones": zones,
        "camera": record.camera, "kind": record.kind, "at": _iso(record.at),
        "confidence": record.confidence, "state": record.state,
        "snapshot_url": (f"/api/alerts/{record.alert_id}/snapshot"
                         if record.snapshot_sha256 else None),
        "before_url": (f"/api/alerts/{record.alert_id}/before"
                       if record.before_sha256 else None),
        "received_at": _iso(record.received_at),
        "acknowledged_by": record.acknowledged_by, "acknowledged_at": _iso(record.acknowledged_at),
        "handled_by": record.handled_by, "handled_at": _iso(record.handled_at),
        "note": record.note or "",
    }


# ------------------------------------------------------------------------ live push (SSE)

@dataclass(frozen=True)
class HubEvent:
    """``kind`` is ``alert`` (a new alert) or ``update`` (its state changed)."""

    kind: str
    data: dict[str, Any]


@dataclass(eq=False)
class Subscription:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[HubEvent] = field(default_factory=lambda: asyncio.Queue(maxsize=500))
    overflowed: bool = False

    def offer(self, event: HubEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            # a stalled browser: it will catch up from the database on its next poll
            self.overflowed = True


MAX_DESKS = 1000
"""Open desks one controller pushes to; past it the oldest is dropped from the push (it
still polls the database every few seconds, so it loses nothing but speed)."""


class AlertHub:
    """Fan-out of alert events from the MQTT thread to every open desk's event loop.

    One per runtime (``Runtime.alerts``), in process and per replica; what it carries
    comes from ``controller/alert_bus.py``, which brings every replica's alerts to every
    replica's hub (PostgreSQL LISTEN/NOTIFY).
    Bounded: at most ``capacity`` subscriptions, each with a bounded queue.
    """

    def __init__(self, capacity: int = MAX_DESKS) -> None:
        self.capacity = capacity
        self._subscribers: dict[Subscription, None] = {}  # insertion order: oldest first
        self._lock = threading.Lock()
        self.published = 0
        self.evicted = 0

    def subscribe(self) -> Subscription:
        sub = Subscription(asyncio.get_running_loop())
        with self._lock:
            self._subscribers[sub] = None
            while len(self._subscribers) > self.capacity:
                oldest = next(iter(self._subscribers))
                del self._subscribers[oldest]
                oldest.overflowed = True
                self.evicted += 1
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subscribers.pop(sub, None)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Thread-safe: hand the event to each subscriber's own loop."""
        event = HubEvent(kind, data)
        with self._lock:
            subs = list(self._subscribers)
        self.published += 1
        for sub in subs:
            try:
                sub.loop.call_soon_threadsafe(sub.offer, event)
            except RuntimeError:  # that loop is closed: the desk is gone
                self.unsubscribe(sub)

