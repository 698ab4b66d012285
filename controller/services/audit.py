"""The audit log: who did what, when, to which record. One record per change.

Services record what they do as they do it. A change made of several steps (an
announcement created, approved by its leader author and scheduled, in one request) is one
transaction, so it leaves one record: the first step names the record, and the steps after
it are listed in its ``detail["steps"]``, in order. An auditor reads one line per thing a
person did, and no route has to remember to write it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from controller.models import AuditEvent

AUDIT_KEY = "loaxa.audit"


class Automatic(StrEnum):
    """Actors that are not people: the controller's own steps. No account may take these
    names (:func:`controller.services.users.create_user`), so a record by one is never
    mistaken for a person's."""

    system = "system"
    """A live session that ended by itself (silence, the station gone, the controller
    stopping)."""
    relay = "relay"
    """The relay runner opening a scheduled slot's sessions."""


AUTOMATIC_NAMES = {Automatic.system: "Hệ thống (tự động)",
                   Automatic.relay: "Tiếp sóng theo lịch"}
"""What the pages call them."""


def record(session: Session, actor: str, action: str, entity: str, entity_id: object,
           **detail: object) -> AuditEvent:
    """Audit a step of the change ``session`` holds (the first step makes the record)."""
    detail = {k: v for k, v in detail.items() if v is not None}
    event: AuditEvent | None = session.info.get(AUDIT_KEY)
    if event is None or event.actor != actor:
        event = AuditEvent(actor=actor, action=action, entity=entity, entity_id=str(entity_id),
                           detail=detail)
        session.add(event)
        session.info[AUDIT_KEY] = event
        return event
    step = {"action": action, **detail}
    if (entity, str(entity_id)) != (event.entity, event.entity_id):
        step.update(entity=entity, entity_id=str(entity_id))
    event.detail = {**event.detail, "steps": [*event.detail.get("steps", []), step]}
    flag_modified(event, "detail")
    return event


def forget(session: Session) -> None:
    """The transaction ended: its next change starts a new record."""
    session.info.pop(AUDIT_KEY, None)


def actions(event: AuditEvent) -> list[str]:
    """The record's action and its later steps', in order."""
    return [event.action, *(s["action"] for s in event.detail.get("steps", []))]


def history(session: Session, entity: str, entity_id: object) -> list[AuditEvent]:
    return list(session.scalars(
        select(AuditEvent).where(AuditEvent.entity == entity,
                                 AuditEvent.entity_id == str(entity_id))
        .order_by(AuditEvent.id)))


def search(session: Session, *, actor: str | None = None, action: str | None = None,
           since: datetime | None = None, until: datetime | None = None,
           offset: int = 0, limit: int = 50) -> tuple[list[AuditEvent], int]:
    """One page of the log, newest first, and how many records match in all (the audit
    page's pager). Empty filters mean any."""
    where = []
    if actor:
        where.append(AuditEvent.actor == actor)
    if action:
        where.append(AuditEvent.action == action)
    if since is not None:
        where.append(AuditEvent.at >= since)
    if until is not None:
        where.append(AuditEvent.at < until)
    total = session.scalar(select(func.count(AuditEvent.id)).where(*where)) or 0
    rows = session.scalars(select(AuditEvent).where(*where)
                           .order_by(AuditEvent.id.desc()).offset(offset).limit(limit))
    return list(rows), total


def known_actions(session: Session) -> list[str]:
    """The actions the log holds (the page's action filter)."""
    return sorted(session.scalars(select(AuditEvent.action).distinct()))
