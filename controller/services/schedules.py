"""Schedules: validated timing, targets that exist, and clashes found before they happen.

Two items clash when their playing times overlap on a node they share. Priorities
resolve most clashes (Thông tư 39/2020): an emergency preempts anything, a priority item
plays before an ordinary one (the plan compiler moves the ordinary one to after it). Two
ordinary items, or two priority items without a staff-chosen order (``sequence``), are
refused with 409 and the list of what they clash with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from controller.domain import PLAYABLE, AnnouncementStatus, DomainError, ScheduleStatus, Targets
from controller.models import Announcement, Node, Schedule
from controller.services import approval, audit
from controller.services import targets as target_rules
from controller.services.effects import effects_of
from controller.services.plans import timing_of
from controller.services.timing import Timing, TimingError, occurrences, validate
from mqtt_contract import Priority

CLASH_WINDOW = timedelta(days=14)
"""How far ahead clashes are looked for (recurring rules repeat beyond it)."""


class ScheduleError(DomainError):
    """Bad schedule input (422)."""

    code = "schedule_invalid"


@dataclass
class Clash:
    """What a new schedule or relay slot would overlap: a schedule (its announcement) or
    another relay slot (:mod:`controller.services.relay`), by title and time for people."""

    schedule_id: int | None
    announcement_id: int | None
    title: str
    at: datetime
    nodes: list[str]
    relay_slot_id: int | None = None

    def as_dict(self) -> dict:
        found = {"schedule_id": self.schedule_id, "announcement_id": self.announcement_id,
                 "relay_slot_id": self.relay_slot_id}
        return {**{k: v for k, v in found.items() if v is not None}, "title": self.title,
                "at": self.at.isoformat(), "nodes": self.nodes}


class ScheduleConflict(Exception):
    def __init__(self, clashes: list[Clash]) -> None:
        super().__init__(f"{len(clashes)} conflicting items")
        self.clashes = clashes


def check_timing(timing: Timing, now: datetime) -> None:
    try:
        validate(timing)
    except TimingError as exc:
        raise ScheduleError(str(exc), exc.message) from None
    if timing.kind == "once" and timing.start_at < now:
        raise ScheduleError("start_at: is in the past",
                            "Thời điểm phát đã qua: hãy chọn một thời điểm sắp tới.")
    if timing.kind != "once" and not occurrences(timing, now, now + timedelta(days=366)):
        raise ScheduleError("rule: no occurrence in the coming year (is `until` in the past?)",
                            "Lịch này không có lần phát nào trong năm tới.")


def resolved(a: Schedule, b: Schedule) -> bool:
    if Priority.emergency in (a.priority, b.priority) or a.priority != b.priority:
        return True
    return (a.priority == Priority.priority and a.sequence is not None
            and b.sequence is not None and a.sequence != b.sequence)


def find_clashes(session: Session, new: Schedule, duration_s: float, now: datetime) -> list[Clash]:
    nodes = list(session.scalars(select(Node)))
    groups = target_rules.group_members(session)
    mine = {n.node_id for n in nodes if target_rules.matches(new.targets, n, groups)}
    end = now + CLASH_WINDOW
    new_spans = [(at, at + timedelta(seconds=duration_s * new.repeat))
                 for at in occurrences(timing_of(new), now, end)]
    clashes: list[Clash] = []
    others = session.scalars(select(Schedule).join(Announcement).where(
        Schedule.status == ScheduleStatus.active, Schedule.id != (new.id or -1),
        Announcement.status != AnnouncementStatus.cancelled)
        .options(selectinload(Schedule.announcement)))
    for other in others:
        if resolved(new, other):
            continue
        shared = sorted(mine & {n.node_id for n in nodes
                                if target_rules.matches(other.targets, n, groups)})
        if not shared:
            continue
        length = timedelta(seconds=(other.announcement.duration_s or 0) * other.repeat)
        for at in occurrences(timing_of(other), now - length, end):
            if any(s < at + length and at < e for s, e in new_spans):
                clashes.append(Clash(other.id, other.announcement_id,
                                     other.announcement.title or other.announcement.text[:60],
                                     at, shared))
                break
    return clashes


def create_schedule(session: Session, announcement: Announcement, *, targets: Targets,
                    timing: Timing, priority: Priority, volume: int | None, repeat: int,
                    sequence: int | None, actor: str) -> Schedule:
    """Validate and add the schedule; once its announcement is approved it goes on the
    targeted nodes' plans (with its audio) after the commit."""
    now = datetime.now(UTC)
    if announcement.status == AnnouncementStatus.cancelled:
        raise ScheduleError("announcement is cancelled", "Bản tin đã bị huỷ.")
    if not targets.names_anything:
        raise ScheduleError("targets: name all, or some zones, groups or nodes",
                            "Hãy chọn nơi phát: tất cả, thôn/khu, nhóm hoặc cụm loa.")
    if unknown := target_rules.unknown_targets(session, targets):
        raise ScheduleError(f"targets: unknown {', '.join(unknown)}",
                            "Có nơi phát không còn tồn tại; hãy tải lại trang và chọn lại.")
    check_timing(timing, now)
    schedule = Schedule(announcement_id=announcement.id, targets=targets, kind=timing.kind,
                        start_at=timing.start_at, rule=timing.rule, until=timing.until,
                        timezone=timing.timezone, priority=priority, volume=volume,
                        repeat=repeat, sequence=sequence, status=ScheduleStatus.active,
                        created_by=actor,
                        published_ms=int(time.time() * 1000))
    if clashes := find_clashes(session, schedule, announcement.duration_s or 0, now):
        raise ScheduleConflict(clashes)
    announcement.schedules.append(schedule)
    if announcement.status in PLAYABLE:
        announcement.status = AnnouncementStatus.scheduled
    session.flush()
    audit.record(session, actor, "schedule", "announcement", announcement.id,
                 schedule=schedule.id)
    approval.republish(session, announcement, [schedule])
    return schedule


def cancel_schedule(session: Session, schedule: Schedule, actor: str) -> None:
    """The item leaves every targeted node's plan (a node playing it stops)."""
    schedule.status = ScheduleStatus.cancelled
    schedule.published_ms = int(time.time() * 1000)
    a = schedule.announcement
    if a.status == AnnouncementStatus.scheduled and not approval.active_schedules(a):
        a.status = AnnouncementStatus.approved
    audit.record(session, actor, "cancel_schedule", "announcement", schedule.announcement_id,
                 schedule=schedule.id)
    effects_of(session).plans(schedule.targets)


def get_schedule(session: Session, schedule_id: int) -> Schedule | None:
    return session.scalar(select(Schedule).where(Schedule.id == schedule_id)
                          .options(selectinload(Schedule.announcement)))


def list_schedules(session: Session, include_cancelled: bool = False) -> list[Schedule]:
    q = select(Schedule).options(selectinload(Schedule.announcement)).order_by(Schedule.id)
    if not include_cancelled:
        q = q.where(Schedule.status == ScheduleStatus.active)
    return list(session.scalars(q))
