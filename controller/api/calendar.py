"""Zones (villages) with their quiet hours, node groups, and holidays."""

from fastapi import APIRouter

from controller.api.deps import AnyUser, DbId, SessionDep, Staff
from controller.api.errors import ErrorCode, api_error, refused
from controller.models import CalendarException
from controller.schemas import GroupIn, GroupOut, HolidayIn, HolidayOut, ZoneIn, ZoneOut
from controller.services import calendar as service

router = APIRouter(tags=["zones, groups, calendar"])


@router.get("/api/zones", response_model=list[ZoneOut])
def list_zones(user: AnyUser, session: SessionDep) -> list[ZoneOut]:
    """Zones named by nodes or edited here; quiet hours default to 22:00–06:00."""
    return [ZoneOut(**z.__dict__) for z in service.list_zones(session)]


@router.put("/api/zones", response_model=ZoneOut)
def put_zone(body: ZoneIn, user: Staff, session: SessionDep) -> ZoneOut:
    """Create or edit a zone (name, quiet hours); its nodes' plans follow at once."""
    service.put_zone(session, body.commune, body.code, body.name, body.quiet_start,
                     body.quiet_end, user.username)
    return ZoneOut(**body.model_dump())


@router.get("/api/groups", response_model=list[GroupOut])
def list_groups(user: AnyUser, session: SessionDep) -> list[GroupOut]:
    return [GroupOut.model_validate(g) for g in service.list_groups(session)]


@router.put("/api/groups", response_model=GroupOut)
def put_group(body: GroupIn, user: Staff, session: SessionDep) -> GroupOut:
    try:
        g = service.put_group(session, body.name, body.node_ids, user.username)
    except service.CalendarError as exc:
        raise refused(422, exc) from None
    return GroupOut(name=g.name, node_ids=list(g.node_ids))


@router.get("/api/calendar", response_model=list[HolidayOut])
def list_holidays(user: AnyUser, session: SessionDep) -> list[HolidayOut]:
    return [HolidayOut.model_validate(h) for h in service.list_holidays(session)]


@router.post("/api/calendar", response_model=HolidayOut, status_code=201)
def add_holiday(body: HolidayIn, user: Staff, session: SessionDep) -> HolidayOut:
    """A day when ordinary and priority items do not play (emergencies still do)."""
    h = service.add_holiday(session, body.day, body.name, body.commune, user.username)
    return HolidayOut.model_validate(h)


@router.delete("/api/calendar/{holiday_id}", status_code=204)
def delete_holiday(holiday_id: DbId, user: Staff, session: SessionDep) -> None:
    h = session.get(CalendarException, holiday_id)
    if h is None:
        raise api_error(404, ErrorCode.not_found, "Không tìm thấy ngày nghỉ này.")
    service.delete_holiday(session, h, user.username)
