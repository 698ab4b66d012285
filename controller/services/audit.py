"""The audit log: who did what, when, to which record."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.models import AuditEvent


def record(session: Session, actor: str, action: str, entity: str, entity_id: object,
           **detail: object) -> AuditEvent:
    event = AuditEvent(actor=actor, action=action, entity=entity, entity_id=str(entity_id),
                       detail={k: v for k, v in detail.items() if v is not None})
    session.add(event)
    return event


def history(session: Session, entity: str, entity_id: object) -> list[AuditEvent]:
    return list(session.scalars(
        select(AuditEvent).where(AuditEvent.entity == entity,
                                 AuditEvent.entity_id == str(entity_id))
        .order_by(AuditEvent.id)))
