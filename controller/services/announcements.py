"""Announcements: text rendered to audio (content-addressed), then approved and scheduled."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from controller.domain import AnnouncementStatus, DomainError, ScheduleStatus
from controller.models import Announcement
from controller.services import approval, audit
from controller.services.content import ContentRenderer, text_items

log = logging.getLogger(__name__)


class AnnouncementError(DomainError):
    """A change its state does not allow (409)."""

    code = "announcement_state"


def speech_text(items: list[dict]) -> str:
    """The words of an announcement, for lists and the log."""
    return " ".join(i["text"] for i in items if i.get("kind") == "speech") or "(recording)"


def create_announcement(session: Session, *, text: str | None, title: str, engine: str,
                        voice: str, renderer: ContentRenderer, actor: str,
                        items: list[dict] | None = None, repeat: int = 1) -> Announcement:
    """Render ``text`` (chime + speech + outro) or ``items``; the announcement is a draft."""
    composed = items if items is not None else text_items(text or "")
    _, media = renderer.render(session, composed, repeat=repeat, engine=engine, voice=voice)
    a = Announcement(text=text if text is not None else speech_text(composed), title=title,
                     engine_requested=engine, status=AnnouncementStatus.draft,
                     created_by=actor,
                     items=items, repeat=repeat, **media)
    session.add(a)
    session.flush()
    audit.record(session, actor, "create", "announcement", a.id,
                 after=AnnouncementStatus.draft)
    return a


def update_content(session: Session, a: Announcement, *, text: str | None, title: str | None,
                   engine: str, voice: str, renderer: ContentRenderer,
                   actor: str) -> Announcement:
    if a.status == AnnouncementStatus.cancelled:
        raise AnnouncementError("announcement is cancelled",
                                "Bản tin đã bị huỷ nên không sửa được.")
    audit.record(session, actor, "edit", "announcement", a.id, title=title,
                 text_changed=text is not None)
    if title is not None:
        a.title = title
    if text is not None and text != a.text:
        _, media = renderer.render(session, text_items(text), repeat=a.repeat, engine=engine,
                                   voice=voice)
        for key, value in media.items():
            setattr(a, key, value)
        a.text, a.items, a.engine_requested = text, None, engine
        approval.back_to_draft(session, a, actor, "content edited")
    approval.republish(session, a)
    return a


def cancel_announcement(session: Session, a: Announcement, actor: str) -> None:
    """Every node's plan drops it (a node playing it stops)."""
    if a.status == AnnouncementStatus.cancelled:
        raise AnnouncementError("announcement already cancelled", "Bản tin đã được huỷ trước đó.")
    before = a.status
    a.status = AnnouncementStatus.cancelled
    for s in a.schedules:
        s.status = ScheduleStatus.cancelled
    approval.touch_schedules(a)
    audit.record(session, actor, "cancel", "announcement", a.id, before=before,
                 after=AnnouncementStatus.cancelled)
    approval.republish(session, a)


def get_announcement(session: Session, announcement_id: int) -> Announcement | None:
    return session.scalar(select(Announcement).where(Announcement.id == announcement_id)
                          .options(selectinload(Announcement.schedules)))


def list_announcements(session: Session, limit: int = 100) -> list[Announcement]:
    return list(session.scalars(
        select(Announcement).order_by(Announcement.id.desc()).limit(limit)
        .options(selectinload(Announcement.schedules))))
