from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException

from controller.api.deps import DbId, RuntimeDep, SessionDep, Staff, UserDep
from controller.api.errors import ErrorCode, api_error, refused
from controller.domain import ScheduleStatus
from controller.localtime import local
from controller.models import Schedule
from controller.schemas import ScheduleIn, ScheduleOut
from controller.services import announcements
from controller.services import schedules as service
from controller.services.plans import timing_of
from controller.services.timing import Timing, TimingError, at_times, occurrences
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


def clash(exc: service.ScheduleConflict, other: str = "bản tin khác") -> HTTPException:
    """409 listing what the schedule (or relay slot) clashes with (by title and time, for
    people)."""
    return HTTPException(409, {
        "code": "schedule_clash", "conflicts": [c.as_dict() for c in exc.clashes],
        "message": f"Trùng giờ với {other} trên cùng cụm loa: "
                   + "; ".join(f"«{c.title}» lúc {local(c.at):%H:%M %d/%m}"
                               for c in exc.clashes[:5])})


@router.post("", response_model=ScheduleOut, status_code=201,
             responses={409: {"description": "clashes with other items; lists them"}})
def create(body: ScheduleIn, user: Staff, runtime: RuntimeDep) -> ScheduleOut:
    """Schedule an announcement: once, an RFC 5545 RRULE or a cron expression.

    It plays only once its announcement is approved. Overlaps with other items on shared
    nodes are refused with 409 (listing them) unless priorities resolve them; emergencies
    go through ``POST /api/emergency``.
    """
    if body.priority == Priority.emergency:
        raise api_error(422, ErrorCode.invalid_request,
                        "Bản tin khẩn cấp được gửi ở trang Khẩn cấp, không qua lịch phát.")
    timing = Timing(body.timing.kind, body.timing.start_at, body.timing.rule,
                    body.timing.until, body.timing.timezone)
    try:
        timing = at_times(timing, body.timing.times or [], datetime.now(UTC))
    except TimingError as exc:
        raise refused(422, service.ScheduleError(str(exc), exc.message)) from None
    with runtime.db.session(commune=user.commune) as s:
        a = announcements.get_announcement(s, body.announcement_id)
        if a is None:
            raise api_error(404, ErrorCode.not_found, "Không tìm thấy bản tin này.")
        try:
            sched = service.create_schedule(
                s, a, targets=body.targets, timing=timing, priority=Priority(body.priority),
                volume=body.volume, repeat=body.repeat, sequence=body.sequence,
                actor=user.username)
        except service.ScheduleError as exc:
            raise refused(422, exc) from None
        except service.ScheduleConflict as exc:
            raise clash(exc) from None
        return schedule_out(sched)


@router.get("", response_model=list[ScheduleOut])
def list_all(user: UserDep, session: SessionDep,
             include_cancelled: bool = False) -> list[ScheduleOut]:
    return [schedule_out(s) for s in service.list_schedules(session, include_cancelled)]


@router.get("/{schedule_id}", response_model=ScheduleOut)
def get(schedule_id: DbId, user: UserDep, session: SessionDep) -> ScheduleOut:
    sched = service.get_schedule(session, schedule_id)
    if sched is None:
        raise api_error(404, ErrorCode.not_found, "Không tìm thấy lịch phát này.")
    return schedule_out(sched)


@router.post("/{schedule_id}/cancel", response_model=ScheduleOut)
def cancel(schedule_id: DbId, user: Staff, runtime: RuntimeDep) -> ScheduleOut:
    """Cancel: the item leaves every targeted node's plan (a node playing it stops)."""
    with runtime.db.session(commune=user.commune) as s:
        sched = service.get_schedule(s, schedule_id)
        if sched is None:
            raise api_error(404, ErrorCode.not_found, "Không tìm thấy lịch phát này.")
        if sched.status == ScheduleStatus.cancelled:
            raise api_error(409, ErrorCode.conflict, "Lịch phát này đã được huỷ trước đó.")
        service.cancel_schedule(s, sched, user.username)
        return schedule_out(sched)
