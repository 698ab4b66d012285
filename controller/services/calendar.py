"""Zones (villages) with their quiet hours, node groups, and holidays: each change is
audited here and the plans it affects follow after the commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controller.domain import DomainError, Targets
from controller.models import CalendarException, Node, NodeGroup, Zone
from controller.services import audit
from controller.services.effects import effects_of

DEFAULT_QUIET = ("22:00", "06:00")


class CalendarError(DomainError):
    """Bad input (422)."""

    code = "calendar_invalid"


@dataclass(frozen=True)
class ZoneView:
    commune: str
    code: str
    name: str
    quiet_start: str
    quiet_end: str
    nodes: list[str]


def zone_label(code: str) -> str:
    """``thon-2`` → ``Thôn 2``: a readable name for a zone nobody has named yet."""
    if code == "-":
        return "Chưa xếp thôn/khu"
    head, _, number = code.partition("-")
    words = {"thon": "Thôn", "khu": "Khu", "xom": "Xóm", "ap": "Ấp", "to": "Tổ"}
    return f"{words[head]} {number}" if head in words and number.isdigit() else code


def list_zones(session: Session) -> list[ZoneView]:
    """Zones named by nodes or edited here; quiet hours default to 22:00–06:00."""
    nodes = list(session.scalars(select(Node)))
    edited = {(z.commune, z.code): z for z in session.scalars(select(Zone))}
    keys = set(edited) | {(n.commune, z) for n in nodes for z in n.zones or ()}
    out = []
    for commune, code in sorted(keys):
        z = edited.get((commune, code))
        start, end = (z.quiet_start, z.quiet_end) if z else DEFAULT_QUIET
        out.append(ZoneView(commune, code, z.name if z else "", start, end,
                            sorted(n.node_id for n in nodes
                                   if n.commune == commune and code in (n.zones or ()))))
    return out


def list_groups(session: Session) -> list[NodeGroup]:
    return list(session.scalars(select(NodeGroup).order_by(NodeGroup.name)))


def list_holidays(session: Session) -> list[CalendarException]:
    return list(session.scalars(select(CalendarException).order_by(CalendarException.day)))


def put_zone(session: Session, commune: str, code: str, name: str, quiet_start: str,
             quiet_end: str, actor: str) -> Zone:
    """Create or edit a zone; its nodes' plans carry the new quiet hours."""
    z = session.scalar(select(Zone).where(Zone.commune == commune, Zone.code == code))
    if z is None:
        z = Zone(commune=commune, code=code)
        session.add(z)
    z.name, z.quiet_start, z.quiet_end = name, quiet_start, quiet_end
    audit.record(session, actor, "edit_zone", "zone", f"{commune}/{code}",
                 quiet=f"{quiet_start}-{quiet_end}")
    effects_of(session).plans(Targets(zones=[code], communes=[commune]))
    return z


def put_group(session: Session, name: str, node_ids: list[str], actor: str) -> NodeGroup:
    """Create or replace a group; every schedule naming it reaches its new members."""
    known = {n.node_id for n in session.scalars(select(Node))}
    if unknown := sorted(set(node_ids) - known):
        raise CalendarError(f"node_ids: unknown nodes {', '.join(unknown)}",
                            "Có cụm loa không còn tồn tại; hãy tải lại trang và chọn lại.")
    g = session.scalar(select(NodeGroup).where(NodeGroup.name == name))
    if g is None:
        g = NodeGroup(name=name)
        try:
            with session.begin_nested():  # group names are the deployment's, not a commune's
                session.add(g)
        except IntegrityError:
            raise CalendarError(f"group name {name!r} is taken",
                                "Tên nhóm này đã được dùng; hãy chọn tên khác.") from None
    g.node_ids = sorted(set(node_ids))
    audit.record(session, actor, "edit_group", "group", name, nodes=g.node_ids)
    effects_of(session).all_plans()
    return g


def add_holiday(session: Session, day: date, name: str, commune: str | None,
                actor: str) -> CalendarException:
    """A day when ordinary and priority items do not play (emergencies still do)."""
    h = CalendarException(day=day, name=name, commune=commune)
    session.add(h)
    session.flush()
    audit.record(session, actor, "add_holiday", "calendar", h.id, day=str(day))
    effects_of(session).all_plans()
    return h


def delete_holiday(session: Session, holiday: CalendarException, actor: str) -> None:
    session.delete(holiday)
    audit.record(session, actor, "delete_holiday", "calendar", holiday.id)
    effects_of(session).all_plans()
