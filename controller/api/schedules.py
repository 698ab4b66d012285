from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException

from controller.api.deps import RuntimeDep, SessionDep, Staff, UserDep
from controller.domain import ScheduleStatus
from controller.models import Schedule
from controller.schemas import ScheduleIn, ScheduleOut
from controller.services import announcements
from controller.services import schedules as service
from controller.services.plans import timing_of
from controller.services.timing import Timing, occurrences
from mqtt_contract import Priority

router = APIRouter(prefix="/api/schedules", tags=["schedules"])


def schedule_out(s: Schedule) -> ScheduleOut:
    now = datetime.now(UTC)
    upcoming = occurrences(timing_of(s), now, now + timedelta(days=30))[:10] \
        if s.status == ScheduleStatus.active else []
    return ScheduleOut(
        id=s.id, announcement_id=s.announcement_id,
        title=s.announcement.title or s.announcement.text[:60], targets=s.targets, kind=s.kind,
        start_at=s.start_at, rule=s.rule, until=s.until, timezone=s.timezone,
        priority=s.priority, volume=s.volume, repeat=s.repeat, sequence=s.sequence,
        status=s.status, created_by=s.created_by, next_occurrences=upcoming)


@router.post("", response_model=ScheduleOut, status_code=201,
             responses={409: {"description": "clashes with other items; lists them"}})
def create(body: ScheduleIn, user: Staff, runtime: RuntimeDep) -> ScheduleOut:
    """Schedule an announcement: once, an RFC 5545 RRULE or a cron expression.

    It plays only once its announcement is approved. Overlaps with other items on shared
    nodes are refused with 409 (listing them) unless priorities resolve them; emergencies
    go through ``POST /api/emergency``.
    """
    if body.priority == Priority.emergency:
        raise HTTPException(422, "priority: emergencies are sent with POST /api/emergency")
    timing = Timing(body.timing.kind, body.timing.start_at, body.timing.rule,
                    body.timing.until, body.timing.timezone)
    with runtime.db.session() as s:
        a = announcements.get_announcement(s, body.announcement_id)
        if a is None:
            raise HTTPException(404, f"announcement {body.announcement_id} not found")
        try:
            sched = service.create_schedule(
                s, a, targets=body.targets, timing=timing, priority=Priority(body.priority),
                volume=body.volume, repeat=body.repeat, sequence=body.sequence,
                actor=user.username)
        except service.ScheduleError as exc:
            raise HTTPException(422, str(exc)) from None
        except service.ScheduleConflict as exc:
            raise HTTPException(409, {"message": "the schedule clashes with other items",
                                      "conflicts": [c.as_dict() for c in exc.clashes]}) from None
        return schedule_out(sched)


@router.get("", response_model=list[ScheduleOut])
def list_all(user: UserDep, session: SessionDep,
             include_cancelled: bool = False) -> list[ScheduleOut]:
    return [schedule_out(s) for s in service.list_schedules(session, include_cancelled)]


@router.get("/{schedule_id}", response_model=ScheduleOut)
def get(schedule_id: int, user: UserDep, session: SessionDep) -> ScheduleOut:
    sched = service.get_schedule(session, schedule_id)
    if sched is None:
        raise HTTPException(404, f"schedule {schedule_id} not found")
    return schedule_out(sched)


@router.post("/{schedule_id}/cancel", response_model=ScheduleOut)
def cancel(schedule_id: int, user: Staff, runtime: RuntimeDep) -> ScheduleOut:
    """Cancel: the item leaves every targeted node's plan (a node playing it stops)."""
    with runtime.db.session() as s:
        sched = service.get_schedule(s, schedule_id)
        if sched is None:
            raise HTTPException(404, f"schedule {schedule_id} not found")
        if sched.status == ScheduleStatus.cancelled:
            raise HTTPException(409, "schedule already cancelled")
        service.cancel_schedule(s, sched, user.username)
        return schedule_out(sched)
