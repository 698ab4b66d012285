"""Relays (tiếp sóng) over the API: stations (admins), slots (staff; a leader approves),
a relay at once (leaders), and what each slot aired.

A station's health is shown as a state, never its error text (which names hosts and
paths): ``ok``, ``failing`` (its last try failed after its last success) or ``unknown``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from controller.api.deps import Admin, DbId, Leader, SessionDep, Staff
from controller.api.errors import refused
from controller.api.schedules import clash
from controller.domain import Targets, TimingKind
from controller.models import LiveBroadcast, RelaySlot, StreamSource
from controller.schemas import In, TimingIn
from controller.services import relay as service
from controller.services.relay import MAX_SLOT_S, RelayError, SlotTiming, SourceState
from controller.services.schedules import ScheduleConflict, ScheduleError
from controller.services.timing import Timing, TimingError, at_times
from mqtt_contract import Priority

router = APIRouter(tags=["relay"])


class SourceIn(In):
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=8, max_length=2000,
                     description="http(s): an Icecast/HTTP MP3 or AAC stream, or an HLS .m3u8")


class SourceOut(BaseModel):
    id: int
    name: str
    state: SourceState
    last_ok_at: datetime | None
    failed_at: datetime | None


class SlotIn(In):
    source_id: int = Field(ge=1)
    targets: Targets
    timing: TimingIn
    duration_s: float = Field(ge=1, le=MAX_SLOT_S)
    title: str = Field(default="", max_length=200)
    priority: Literal["ordinary", "priority"] = Field(
        default="priority", description="as a schedule's: ordinary is held by quiet hours "
                                        "(a slot starting in them is refused), priority "
                                        "airs through them")


class RelayNowIn(In):
    targets: Targets = Field(default_factory=Targets.everyone)
    duration_s: float = Field(default=3600, ge=1, le=MAX_SLOT_S)


class SlotOut(BaseModel):
    id: int
    source_id: int
    title: str
    targets: Targets
    kind: TimingKind
    start_at: datetime
    rule: str | None
    duration_s: float
    priority: Priority
    status: str
    approved: bool
    created_by: str


class AiredOut(BaseModel):
    """One try of a slot: when it aired, for how long, why it ended."""

    session_id: str
    started_at: datetime
    ended_at: datetime | None
    aired_s: float | None
    end_reason: str | None
    frames: int


def source_out(s: StreamSource) -> SourceOut:
    state = service.source_state(s)
    return SourceOut(id=s.id, name=s.name, state=state, last_ok_at=s.last_ok_at,
                     failed_at=s.last_error_at if state == SourceState.failing else None)


def slot_out(s: RelaySlot) -> SlotOut:
    return SlotOut(id=s.id, source_id=s.source_id, title=s.title, targets=s.targets,
                   kind=s.kind, start_at=s.start_at, rule=s.rule, duration_s=s.duration_s,
                   priority=s.priority, status=s.status.value, approved=s.approved_by is not None,
                   created_by=s.created_by)


def aired_out(b: LiveBroadcast) -> AiredOut:
    aired = (b.ended_at - b.started_at).total_seconds() if b.ended_at else None
    return AiredOut(session_id=b.id, started_at=b.started_at, ended_at=b.ended_at,
                    aired_s=aired, end_reason=b.end_reason, frames=b.frames)


@router.get("/api/stream-sources", response_model=list[SourceOut])
def sources(user: Staff, session: SessionDep) -> list[SourceOut]:
    return [source_out(s) for s in service.list_sources(session)]


@router.post("/api/stream-sources", response_model=SourceOut, status_code=201)
def add_source(body: SourceIn, user: Admin, session: SessionDep) -> SourceOut:
    """Register a station (admins)."""
    try:
        return source_out(service.add_source(session, body.name, body.url, user.username))
    except RelayError as exc:
        raise refused(422, exc) from None


@router.delete("/api/stream-sources/{source_id}", response_model=SourceOut)
def remove_source(source_id: DbId, user: Admin, session: SessionDep) -> SourceOut:
    """Retire a station; its slots are cancelled."""
    try:
        return source_out(service.remove_source(session, source_id, user.username))
    except RelayError as exc:
        raise refused(404, exc) from None


@router.post("/api/stream-sources/{source_id}/relay", response_model=SlotOut, status_code=201,
             responses={409: {"description": "another relay is on those speakers then"}})
def relay_now(source_id: DbId, body: RelayNowIn, user: Leader, session: SessionDep) -> SlotOut:
    """Relay a station at once (a leader), for ``duration_s`` or until cancelled; at
    priority level, so quiet hours do not hold it."""
    try:
        return slot_out(service.start_now(session, source_id, body.targets, body.duration_s,
                                          user.username))
    except (RelayError, ScheduleError) as exc:
        raise refused(409, exc) from None
    except ScheduleConflict as exc:
        raise clash(exc, "lịch tiếp sóng khác") from None


@router.get("/api/relay-slots", response_model=list[SlotOut])
def slots(user: Staff, session: SessionDep) -> list[SlotOut]:
    return [slot_out(s) for s in service.list_slots(session)]


@router.post("/api/relay-slots", response_model=SlotOut, status_code=201,
             responses={409: {"description": "overlaps another relay slot; lists them"}})
def add_slot(body: SlotIn, user: Staff, session: SessionDep) -> SlotOut:
    """Schedule a relay like an announcement: once, at several times of day, an RRULE or
    a cron; ordinary or priority (an ordinary slot starting in a targeted zone's quiet
    hours is refused, naming it); a leader's slot is approved at once, staff's waits for
    a leader. A slot overlapping another relay on a shared speaker is refused (409)."""
    t = body.timing
    now = datetime.now(UTC)
    try:
        timing = at_times(Timing(t.kind, t.start_at, t.rule, t.until, t.timezone),
                          t.times or [], now)
        return slot_out(service.add_slot(
            session, body.source_id, body.targets,
            SlotTiming(TimingKind(timing.kind), timing.start_at, timing.rule, timing.until,
                       timing.timezone),
            body.duration_s, body.title, user.username, user.role, Priority(body.priority),
            now=now))
    except (RelayError, ScheduleError, TimingError) as exc:
        raise refused(422, exc) from None
    except ScheduleConflict as exc:
        raise clash(exc, "lịch tiếp sóng khác") from None


@router.post("/api/relay-slots/{slot_id}/approve", response_model=SlotOut)
def approve_slot(slot_id: DbId, user: Leader, session: SessionDep) -> SlotOut:
    try:
        return slot_out(service.approve_slot(session, slot_id, user.username))
    except RelayError as exc:
        raise refused(409, exc) from None


@router.post("/api/relay-slots/{slot_id}/cancel", response_model=SlotOut)
def cancel_slot(slot_id: DbId, user: Staff, session: SessionDep) -> SlotOut:
    """Cancel a slot; one on air ends within a second."""
    try:
        return slot_out(service.cancel_slot(session, slot_id, user.username))
    except RelayError as exc:
        raise refused(404, exc) from None


@router.get("/api/relay-slots/{slot_id}/log", response_model=list[AiredOut])
def slot_log(slot_id: DbId, user: Staff, session: SessionDep) -> list[AiredOut]:
    """What the slot aired: one row per try (a failing station is tried again)."""
    try:
        service.get_slot(session, slot_id)
    except RelayError as exc:
        raise refused(404, exc) from None
    return [aired_out(b) for b in service.slot_log(session, slot_id)]
