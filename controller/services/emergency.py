"""Emergencies (khẩn cấp): played at once everywhere targeted, preempting anything.

An emergency is an approved announcement with a one-off ``emergency`` schedule starting
now, so it is in every targeted plan (a node that missed the command still plays it when
it gets its plan, within its grace), and a ``play`` command carrying the same item id is
sent at once (so a node that holds the clip starts without waiting for a plan). The node
keeps one outcome per item id: the command and the plan never play it twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.domain import AnnouncementStatus, DomainError, ScheduleStatus, Targets, TimingKind
from controller.localtime import zone_name
from controller.models import Announcement, Schedule
from controller.services import approval, audit
from controller.services import targets as target_rules
from controller.services.effects import effects_of
from controller.services.item_ids import item_id
from controller.services.plans import media_ref
from mqtt_contract import Command, CommandKind, Priority


class EmergencyError(DomainError):
    """The emergency cannot be sent (409)."""

    code = "emergency_refused"


@dataclass(frozen=True)
class Sent:
    schedule: Schedule
    command: Command
    nodes: int


def start_emergency(session: Session, a: Announcement, targets: Targets, repeat: int,
                    volume: int | None, actor: str) -> Sent:
    """Schedule ``a`` now on ``targets``; after the commit its audio, the play command and
    (a moment later, the safety net) the plans go out."""
    if a.status == AnnouncementStatus.cancelled:
        raise EmergencyError("announcement is cancelled",
                             "Bản tin này đã bị huỷ nên không thể phát.")
    if a.status not in (AnnouncementStatus.approved, AnnouncementStatus.scheduled):
        approval.approve_directly(session, a, actor, "emergency sent by a leader")
    now = datetime.now(UTC)
    schedule = Schedule(announcement_id=a.id, targets=targets, kind=TimingKind.once,
                        start_at=now, timezone=zone_name(), priority=Priority.emergency,
                        volume=volume, repeat=repeat, status=ScheduleStatus.active,
                        created_by=actor,
                        published_ms=int(now.timestamp() * 1000))
    session.add(schedule)
    a.status = AnnouncementStatus.scheduled
    session.flush()
    command = Command(kind=CommandKind.play, media=media_ref(a), priority=Priority.emergency,
                      volume=volume, repeat=repeat, item_id=item_id(schedule.id, now))
    audit.record(session, actor, "emergency", "announcement", a.id, schedule=schedule.id,
                 targets=targets.stored())
    (effects_of(session).send_media(a.id, targets).send_command(targets, command)
     .plans(targets, later=True))
    return Sent(schedule, command, len(target_rules.addresses(session, targets)))


def stop_emergencies(session: Session, targets: Targets, actor: str) -> tuple[Command, int]:
    """Stop what plays on ``targets`` and end every active emergency schedule."""
    command = Command(kind=CommandKind.stop)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    ended = list(session.scalars(select(Schedule).where(
        Schedule.status == ScheduleStatus.active, Schedule.priority == Priority.emergency)))
    for s in ended:
        s.status = ScheduleStatus.cancelled
        s.published_ms = now_ms
    audit.record(session, actor, "stop_emergency", "command", command.id,
                 targets=targets.stored(), schedules=[s.id for s in ended] or None,
                 announcements=sorted({s.announcement_id for s in ended}) or None)
    fx = effects_of(session).send_command(targets, command)
    fx.plans(*(s.targets for s in ended))
    return command, len(target_rules.addresses(session, targets))


def active_emergencies(session: Session) -> list[Schedule]:
    """Emergency schedules not yet stopped, newest first (the page shows them by title)."""
    return list(session.scalars(
        select(Schedule).where(Schedule.status == ScheduleStatus.active,
                               Schedule.priority == Priority.emergency)
        .order_by(Schedule.id.desc())))
