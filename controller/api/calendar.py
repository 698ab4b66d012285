"""Zones (villages) with their quiet hours, node groups, and holidays."""

from fastapi import APIRouter, HTTPException
from sqlalchemy import select

from controller.api.deps import AnyUser, RuntimeDep, SessionDep, Staff
from controller.models import CalendarException, Node, NodeGroup, Zone
from controller.schemas import GroupIn, GroupOut, HolidayIn, HolidayOut, ZoneIn, ZoneOut
from controller.services import audit

router = APIRouter(tags=["zones, groups, calendar"])


@router.get("/api/zones", response_model=list[ZoneOut])
def list_zones(user: AnyUser, session: SessionDep) -> list[ZoneOut]:
    """Zones named by nodes or edited here; quiet hours default to 22:00–06:00."""
    nodes = list(session.scalars(select(Node)))
    edited = {(z.commune, z.code): z for z in session.scalars(select(Zone))}
    keys = set(edited) | {(n.commune, z) for n in nodes for z in n.zones or ()}
    out = []
    for commune, code in sorted(keys):
        z = edited.get((commune, code))
        out.append(ZoneOut(commune=commune, code=code, name=z.name if z else "",
                           quiet_start=z.quiet_start if z else "22:00",
                           quiet_end=z.quiet_end if z else "06:00",
                           nodes=sorted(n.node_id for n in nodes
                                        if n.commune == commune and code in (n.zones or ()))))
    return out


@router.put("/api/zones", response_model=ZoneOut)
def put_zone(body: ZoneIn, user: Staff, runtime: RuntimeDep) -> ZoneOut:
    """Create or edit a zone (name, quiet hours); its nodes' plans follow at once."""
    with runtime.db.session() as s:
        z = s.scalar(select(Zone).where(Zone.commune == body.commune, Zone.code == body.code))
        if z is None:
            z = Zone(commune=body.commune, code=body.code)
            s.add(z)
        z.name, z.quiet_start, z.quiet_end = body.name, body.quiet_start, body.quiet_end
        audit.record(s, user.username, "edit_zone", "zone", f"{body.commune}/{body.code}",
                     quiet=f"{body.quiet_start}-{body.quiet_end}")
    runtime.publish_plans([{"zones": [body.code]}])
    return ZoneOut(**body.model_dump())


@router.get("/api/groups", response_model=list[GroupOut])
def list_groups(user: AnyUser, session: SessionDep) -> list[GroupOut]:
    return [GroupOut.model_validate(g) for g in session.scalars(select(NodeGroup))]


@router.put("/api/groups", response_model=GroupOut)
def put_group(body: GroupIn, user: Staff, runtime: RuntimeDep) -> GroupOut:
    with runtime.db.session() as s:
        known = {n.node_id for n in s.scalars(select(Node))}
        if unknown := sorted(set(body.node_ids) - known):
            raise HTTPException(422, f"node_ids: unknown nodes {', '.join(unknown)}")
        g = s.scalar(select(NodeGroup).where(NodeGroup.name == body.name))
        if g is None:
            g = NodeGroup(name=body.name)
            s.add(g)
        g.node_ids = sorted(set(body.node_ids))
        audit.record(s, user.username, "edit_group", "group", body.name, nodes=g.node_ids)
    runtime.publish_plans()
    return GroupOut(name=body.name, node_ids=sorted(set(body.node_ids)))


@router.get("/api/calendar", response_model=list[HolidayOut])
def list_holidays(user: AnyUser, session: SessionDep) -> list[HolidayOut]:
    return [HolidayOut.model_validate(h) for h in
            session.scalars(select(CalendarException).order_by(CalendarException.day))]


@router.post("/api/calendar", response_model=HolidayOut, status_code=201)
def add_holiday(body: HolidayIn, user: Staff, runtime: RuntimeDep) -> HolidayOut:
    """A day when ordinary and priority items do not play (emergencies still do)."""
    with runtime.db.session() as s:
        h = CalendarException(day=body.day, name=body.name, commune=body.commune)
        s.add(h)
        s.flush()
        audit.record(s, user.username, "add_holiday", "calendar", h.id, day=str(body.day))
        out = HolidayOut.model_validate(h)
    runtime.publish_plans()
    return out


@router.delete("/api/calendar/{holiday_id}", status_code=204)
def delete_holiday(holiday_id: int, user: Staff, runtime: RuntimeDep) -> None:
    with runtime.db.session() as s:
        h = s.get(CalendarException, holiday_id)
        if h is None:
            raise HTTPException(404, f"calendar entry {holiday_id} not found")
        s.delete(h)
        audit.record(s, user.username, "delete_holiday", "calendar", holiday_id)
    runtime.publish_plans()
