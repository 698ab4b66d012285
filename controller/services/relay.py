"""Relays (tiếp sóng): stations admins register, and the slots staff schedule for them.

A slot is timed like a schedule (once, RRULE or cron, in its time zone: the same
:mod:`controller.services.timing`), reaches targets like one, and waits for a leader's
approval like an announcement (a leader's own slot is approved at once). Each occurrence
airs for ``duration_s`` at priority ``live``: scheduled items yield to it, an emergency
takes over from it, quiet hours do not hold it (they hold ordinary items only).
:mod:`controller.relay` opens and ends the live sessions that carry it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.domain import DomainError, ScheduleStatus, Targets, TimingKind
from controller.models import LiveBroadcast, RelaySlot, StreamSource
from controller.security import Role
from controller.services import audit
from controller.services import targets as target_rules
from controller.services import timing as timing_rules

MAX_SLOT_S = 6 * 3600.0
"""The longest a relay slot airs (a morning programme is an hour or two)."""
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
             duration_s: float, title: str, actor: str, role: Role) -> RelaySlot:
    """A slot for a station; approved at once when a leader (or admin) makes it."""
    source = get_source(session, source_id)
    timing_rules.validate(_timing(when))
    if unknown := target_rules.unknown_targets(session, targets):
        raise RelayError(f"unknown targets {unknown}", "Có khu vực hoặc cụm loa không tồn tại.")
    if not target_rules.addresses(session, targets):
        raise RelayError("no node targeted", "Chưa chọn cụm loa nào để tiếp sóng.")
    if not 1 <= duration_s <= MAX_SLOT_S:
        raise RelayError("duration out of range", "Thời lượng tiếp sóng từ 1 giây đến 6 giờ.")
    slot = RelaySlot(source_id=source.id, title=title or source.name, targets=targets,
                     kind=when.kind, start_at=when.start_at, rule=when.rule, until=when.until,
                     timezone=when.timezone, duration_s=duration_s, created_by=actor,
                     approved_by=actor if role in (Role.leader, Role.admin) else None)
    session.add(slot)
    session.flush()
    audit.record(session, actor, "create", "relay_slot", slot.id, source=source.id,
                 targets=targets.stored(), approved=slot.approved_by is not None)
    return slot


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
    """Occurrences of approved, active slots of live stations that span ``now``."""
    slots = session.scalars(select(RelaySlot).join(StreamSource).where(
        RelaySlot.status == ScheduleStatus.active, RelaySlot.approved_by.is_not(None),
        StreamSource.removed_at.is_(None)))
    airings = []
    for slot in slots:
        length = timedelta(seconds=slot.duration_s)
        for start in timing_rules.occurrences(_timing(slot), now - length, now + timedelta(
                microseconds=1)):
            if start <= now < start + length:
                airings.append(Airing(slot.id, start, start + length, slot.source.url,
                                      slot.source_id, slot.title, slot.targets, slot.commune))
    return airings


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


def failing_sources(session: Session) -> list[StreamSource]:
    """Stations whose last attempt failed after their last success (the dashboard)."""
    return [s for s in list_sources(session) if s.last_error_at and (
        s.last_ok_at is None or s.last_error_at > s.last_ok_at)]


def start_now(session: Session, source_id: int, targets: Targets, duration_s: float,
              actor: str) -> RelaySlot:
    """A leader's relay at once: a one-off slot from now, approved by them."""
    return add_slot(session, source_id, targets, SlotTiming(
        TimingKind.once, datetime.now(UTC), None, None, "UTC"), duration_s, "", actor,
        Role.leader)
