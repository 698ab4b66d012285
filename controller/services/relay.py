"""Relays (tiếp sóng): stations admins register, and the slots staff schedule for them.

A slot is scheduled like an announcement, with the owners of those rules:
- timed like a schedule (once, several times of day, RRULE or cron, in its time zone),
  checked by :func:`controller.services.schedules.check_timing` (nothing in the past, an
  occurrence within a year);
- a TT39 level, ordinary or priority, held like a scheduled item by
  :func:`controller.services.plans.held`: holidays hold both, quiet hours hold an ordinary
  slot. A new ordinary slot that would start inside a targeted node's quiet hours is
  refused, naming the zone and its window, so staff never schedule a silent relay; if a
  zone's quiet hours change later, the nodes inside them at an occurrence's start are
  left out of that airing;
- a leader's approval (a leader's own slot is approved at once);
- clashes: two relays cannot share a speaker at once, so a slot overlapping another
  active slot on a shared node is refused with 409 and the list (the same
  :class:`~controller.services.schedules.Clash` as schedules). Scheduled announcements
  are not clashes: on air a relay is priority ``live`` (above ordinary and priority), so
  an announcement yields to it and resumes or is rescheduled by the node's rule
  (docs/live.md), and an emergency takes over from it.
:mod:`controller.relay` opens and ends the live sessions that carry it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.domain import DomainError, ScheduleStatus, Targets, TimingKind
from controller.models import LiveBroadcast, Node, RelaySlot, StreamSource, Zone
from controller.security import Role
from controller.services import audit, plans
from controller.services import targets as target_rules
from controller.services import timing as timing_rules
from controller.services.calendar import zone_label
from controller.services.schedules import CLASH_WINDOW, Clash, ScheduleConflict, check_timing
from mqtt_contract import Priority

MAX_SLOT_S = 6 * 3600.0
"""The longest a relay slot airs (a morning programme is an hour or two)."""
SLOT_PRIORITIES = (Priority.ordinary, Priority.priority)
"""What staff may choose for a slot (an emergency goes through the emergency page)."""
ERROR_CHARS = 300


class RelayError(DomainError):
    """A station or slot that cannot be used (409 / 404)."""

    code = "relay_refused"


def check_url(url: str) -> str:
    """Only http(s) stations: ffmpeg must never be pointed at a file or another protocol
    of the controller's machine."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise RelayError(f"not an http(s) stream URL: {url[:80]!r}",
                         "Địa chỉ đài phải bắt đầu bằng http:// hoặc https://.")
    return url.strip()


def add_source(session: Session, name: str, url: str, actor: str) -> StreamSource:
    source = StreamSource(name=name.strip(), url=check_url(url), created_by=actor)
    session.add(source)
    session.flush()
    audit.record(session, actor, "create", "stream_source", source.id, name=source.name)
    return source


def get_source(session: Session, source_id: int) -> StreamSource:
    source = session.get(StreamSource, source_id)
    if source is None or source.removed_at is not None:
        raise RelayError("no such stream source", "Không tìm thấy đài này.")
    return source


def remove_source(session: Session, source_id: int, actor: str) -> StreamSource:
    """Retire a station; its active slots are cancelled with it."""
    source = get_source(session, source_id)
    source.removed_at = datetime.now(UTC)
    slots = list(session.scalars(select(RelaySlot).where(
        RelaySlot.source_id == source_id, RelaySlot.status == ScheduleStatus.active)))
    for slot in slots:
        slot.status = ScheduleStatus.cancelled
    audit.record(session, actor, "remove", "stream_source", source_id,
                 slots=[s.id for s in slots] or None)
    return source


def list_sources(session: Session) -> list[StreamSource]:
    return list(session.scalars(select(StreamSource).where(StreamSource.removed_at.is_(None))
                                .order_by(StreamSource.name)))


@dataclass(frozen=True)
class SlotTiming:
    kind: TimingKind
    start_at: datetime
    rule: str | None
    until: datetime | None
    timezone: str


def _timing(slot: RelaySlot | SlotTiming) -> timing_rules.Timing:
    return timing_rules.Timing(slot.kind.value, slot.start_at, slot.rule, slot.until,
                               slot.timezone)


def add_slot(session: Session, source_id: int, targets: Targets, when: SlotTiming,
             duration_s: float, title: str, actor: str, role: Role,
             priority: Priority = Priority.priority, now: datetime | None = None) -> RelaySlot:
    """A slot for a station, checked like a schedule (see the module doc); approved at
    once when a leader (or admin) makes it."""
    now = now or datetime.now(UTC)
    source = get_source(session, source_id)
    if priority not in SLOT_PRIORITIES:
        raise RelayError(f"priority {priority}: ordinary or priority",
                         "Mức ưu tiên tiếp sóng là Thông thường hoặc Ưu tiên.")
    check_timing(_timing(when), now)
    if unknown := target_rules.unknown_targets(session, targets):
        raise RelayError(f"unknown targets {unknown}", "Có khu vực hoặc cụm loa không tồn tại.")
    if not 1 <= duration_s <= MAX_SLOT_S:
        raise RelayError("duration out of range", "Thời lượng tiếp sóng từ 1 giây đến 6 giờ.")
    slot = RelaySlot(source_id=source.id, title=title or source.name, targets=targets,
                     kind=when.kind, start_at=when.start_at, rule=when.rule, until=when.until,
                     timezone=when.timezone, duration_s=duration_s, priority=priority,
                     created_by=actor,
                     approved_by=actor if role in (Role.leader, Role.admin) else None)
    reached = _reached(session, targets)
    if not reached:
        raise RelayError("no node targeted", "Chưa chọn cụm loa nào để tiếp sóng.")
    if priority == Priority.ordinary and (quiet := _in_quiet_hours(session, slot, reached,
                                                                   now)):
        raise RelayError(f"starts in quiet hours: {quiet}", quiet)
    if clashes := find_clashes(session, slot, reached, now):
        raise ScheduleConflict(clashes)
    session.add(slot)
    session.flush()
    audit.record(session, actor, "create", "relay_slot", slot.id, source=source.id,
                 targets=targets.stored(), approved=slot.approved_by is not None,
                 priority=priority.value)
    return slot


def _reached(session: Session, targets: Targets) -> list[Node]:
    groups = target_rules.group_members(session)
    return [n for n in session.scalars(select(Node)) if target_rules.matches(targets, n, groups)]


def _spans(slot: RelaySlot, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    length = timedelta(seconds=slot.duration_s)
    return [(at, at + length) for at in timing_rules.occurrences(_timing(slot), start, end)]


def _in_quiet_hours(session: Session, slot: RelaySlot, reached: list[Node],
                    now: datetime) -> str | None:
    """Why an ordinary slot would be held by quiet hours (for people), or None: the first
    occurrence within the clash window that starts inside a reached node's window."""
    _, quiet = plans.load_calendar(session, now)
    zone_names = {(z.commune, z.code): z.name for z in session.scalars(select(Zone))}
    tz = _timing(slot).zone()
    for start, _ in _spans(slot, now, now + CLASH_WINDOW):
        local = start.astimezone(tz)
        for node in reached:
            window = plans.quiet_window_in(quiet, node)
            if plans.held(Priority.ordinary, local, window, holiday=False):
                where = (f"cụm loa {node.name or 'chưa đặt tên'}" if not node.zones else
                         zone_names.get((node.commune, node.zones[0]))
                         or zone_label(node.zones[0]))
                return (f"Giờ tiếp sóng {local:%H:%M} ngày {local:%d/%m} rơi vào giờ yên tĩnh "
                        f"của {where} ({window.start:%H:%M}–{window.end:%H:%M}). Hãy chọn "
                        "giờ khác, hoặc mức Ưu tiên để tiếp sóng cả trong giờ yên tĩnh.")
    return None


def find_clashes(session: Session, new: RelaySlot, reached: list[Node],
                 now: datetime) -> list[Clash]:
    """Active slots that would be on air at the same time on a node ``new`` reaches."""
    end = now + CLASH_WINDOW
    mine = {(n.commune, n.node_id) for n in reached}
    new_spans = _spans(new, now, end)
    groups = target_rules.group_members(session)
    nodes = list(session.scalars(select(Node)))
    clashes = []
    for other in session.scalars(select(RelaySlot).where(
            RelaySlot.status == ScheduleStatus.active, RelaySlot.id != (new.id or -1))):
        shared = sorted(node_id for commune, node_id in mine & {
            (n.commune, n.node_id) for n in nodes
            if target_rules.matches(other.targets, n, groups)})
        if not shared:
            continue
        longest = timedelta(seconds=other.duration_s)
        for at, until in _spans(other, now - longest, end):
            if any(s < until and at < e for s, e in new_spans):
                clashes.append(Clash(None, None, other.title, at, shared,
                                     relay_slot_id=other.id))
                break
    return clashes


def get_slot(session: Session, slot_id: int) -> RelaySlot:
    slot = session.get(RelaySlot, slot_id)
    if slot is None:
        raise RelayError("no such relay slot", "Không tìm thấy lịch tiếp sóng này.")
    return slot


def approve_slot(session: Session, slot_id: int, actor: str) -> RelaySlot:
    slot = get_slot(session, slot_id)
    if slot.status != ScheduleStatus.active:
        raise RelayError("slot cancelled", "Lịch tiếp sóng này đã bị huỷ.")
    slot.approved_by = actor
    audit.record(session, actor, "approve", "relay_slot", slot_id)
    return slot


def cancel_slot(session: Session, slot_id: int, actor: str) -> RelaySlot:
    slot = get_slot(session, slot_id)
    slot.status = ScheduleStatus.cancelled
    audit.record(session, actor, "cancel", "relay_slot", slot_id)
    return slot


def list_slots(session: Session) -> list[RelaySlot]:
    return list(session.scalars(select(RelaySlot).order_by(RelaySlot.id.desc()).limit(200)))


@dataclass(frozen=True)
class Airing:
    """One occurrence of a slot that should be on air now."""

    slot_id: int
    start: datetime
    end: datetime
    url: str
    source_id: int
    title: str
    targets: Targets
    commune: str | None = None
    """The slot's commune (its session is that commune's); None: the province's."""


def on_air(session: Session, now: datetime) -> list[Airing]:
    """Occurrences of approved, active slots of live stations that span ``now``, each
    reaching the targeted nodes that :func:`controller.services.plans.held` does not hold
    at its start (none held: the slot's own targets, so zones still get zone topics)."""
    slots = list(session.scalars(select(RelaySlot).join(StreamSource).where(
        RelaySlot.status == ScheduleStatus.active, RelaySlot.approved_by.is_not(None),
        StreamSource.removed_at.is_(None))))
    airings = []
    calendar = plans.load_calendar(session, now) if slots else ({}, {})
    for slot in slots:
        length = timedelta(seconds=slot.duration_s)
        for start in timing_rules.occurrences(_timing(slot), now - length, now + timedelta(
                microseconds=1)):
            if start <= now < start + length:
                targets = _not_held(session, slot, start, calendar)
                if targets is not None:
                    airings.append(Airing(slot.id, start, start + length, slot.source.url,
                                          slot.source_id, slot.title, targets, slot.commune))
    return airings


def _not_held(session: Session, slot: RelaySlot, start: datetime,
              calendar: tuple[plans.Holidays, plans.QuietWindows]) -> Targets | None:
    """The slot's targets without the nodes held at ``start``; None when all are."""
    holidays, quiet = calendar
    local = start.astimezone(_timing(slot).zone())
    if slot.priority != Priority.ordinary and not any(
            local.date() in days for days in holidays.values()):
        return slot.targets  # nothing can hold it: no nodes to look at, every second
    # a commune's slot has its commune in its targets (stamped by controller.scope)
    reached = target_rules.addresses(session, slot.targets)
    kept = [n for n in reached if not plans.held(
        slot.priority, local, plans.quiet_window_in(quiet, n),
        plans.is_holiday_in(holidays, n, local.date()))]
    if len(kept) == len(reached):
        return slot.targets
    if not kept:
        return None
    return Targets(nodes=sorted({n.node_id for n in kept}),
                   communes=sorted({n.commune for n in kept}))


def note_source(session: Session, source_id: int, error: str | None) -> None:
    """A station answered (``error`` None) or failed (shown to staff, in one line)."""
    source = session.get(StreamSource, source_id)
    if source is None:
        return
    now = datetime.now(UTC)
    if error is None:
        source.last_ok_at = now
    else:
        source.last_error, source.last_error_at = error[:ERROR_CHARS], now


def slot_log(session: Session, slot_id: int) -> list[LiveBroadcast]:
    """What a slot aired: its sessions (one per try), oldest first."""
    return list(session.scalars(select(LiveBroadcast).where(
        LiveBroadcast.relay_slot_id == slot_id).order_by(LiveBroadcast.started_at)))


class SourceState(StrEnum):
    """A station's health as staff see it (never its error text, which names hosts)."""

    ok = "ok"
    failing = "failing"
    """Its last try failed after its last success."""
    unknown = "unknown"
    """Never tried yet."""


def source_state(source: StreamSource) -> SourceState:
    if source.last_error_at is not None and (source.last_ok_at is None
                                             or source.last_error_at > source.last_ok_at):
        return SourceState.failing
    return SourceState.ok if source.last_ok_at else SourceState.unknown


def failing_sources(session: Session) -> list[StreamSource]:
    """Stations whose last attempt failed after their last success (the dashboard)."""
    return [s for s in list_sources(session) if source_state(s) == SourceState.failing]


def start_now(session: Session, source_id: int, targets: Targets, duration_s: float,
              actor: str) -> RelaySlot:
    """A leader's relay at once: a one-off slot from now, approved by them."""
    now = datetime.now(UTC)
    return add_slot(session, source_id, targets, SlotTiming(
        TimingKind.once, now, None, None, "UTC"), duration_s, "", actor, Role.leader,
        Priority.priority, now=now)
