"""Emergencies (khẩn cấp): played at once everywhere targeted, preempting anything.

An emergency is an approved announcement with a one-off ``emergency`` schedule starting
now, so it is in every targeted plan (a node that missed the command still plays it when
it gets its plan, within its grace), and a ``play`` command carrying the same item id is
sent at once (so a node that holds the clip starts without waiting for a plan). The node
keeps one outcome per item id: the command and the plan never play it twice.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from controller.models import Announcement, Schedule
from controller.services import approval, audit
from controller.services.item_ids import item_id
from controller.services.plans import media_ref
from controller.services.timing import Timing
from mqtt_contract import Command, CommandKind, Priority


def start_emergency(session: Session, a: Announcement, targets: dict, repeat: int,
                    volume: int | None, actor: str) -> tuple[Schedule, Command]:
    if a.status == "cancelled":
        raise ValueError("announcement is cancelled")
    if a.status not in ("approved", "scheduled"):
        approval.approve_directly(session, a, actor, "emergency sent by a leader")
    now = datetime.now(UTC)
    timing = Timing("once", now)
    schedule = Schedule(announcement_id=a.id, targets=targets, kind=timing.kind,
                        start_at=now, timezone=timing.timezone, priority=Priority.emergency,
                        volume=volume, repeat=repeat, status="active", created_by=actor,
                        published_ms=int(now.timestamp() * 1000))
    session.add(schedule)
    a.status = "scheduled"
    session.flush()
    command = Command(kind=CommandKind.play, media=media_ref(a), priority=Priority.emergency,
                      volume=volume, repeat=repeat, item_id=item_id(schedule.id, now))
    audit.record(session, actor, "emergency", "announcement", a.id, schedule=schedule.id,
                 targets=targets)
    return schedule, command


def stop_emergencies(session: Session, actor: str) -> list[dict]:
    """End every active emergency schedule (the stop command ends the playing)."""
    from sqlalchemy import select

    stopped = []
    for s in session.scalars(select(Schedule).where(Schedule.status == "active",
                                                    Schedule.priority == Priority.emergency)):
        s.status = "cancelled"
        s.published_ms = int(datetime.now(UTC).timestamp() * 1000)
        stopped.append(s.targets)
        audit.record(session, actor, "stop_emergency", "announcement", s.announcement_id,
                     schedule=s.id)
    return stopped
