"""Announcements: text rendered to audio (content-addressed), then approved and scheduled."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from controller.domain import AnnouncementStatus, DomainError, ScheduleStatus
from controller.models import Announcement, PlaybackLog
from controller.security import Role
from controller.services import approval, audit, item_ids
from controller.services.content import ContentRenderer, text_items
from controller.services.effects import effects_of
from mqtt_contract import Priority

log = logging.getLogger(__name__)


class AnnouncementError(DomainError):
    """A change its state does not allow (409), or this person may not make (403)."""

    code = "announcement_state"

    def __init__(self, detail: str, message: str, *, forbidden: bool = False) -> None:
        super().__init__(detail, message)
        self.forbidden = forbidden
        if forbidden:
            self.code = "announcement_not_yours"


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
                   engine: str, voice: str, renderer: ContentRenderer, actor: str,
                   by_leader: bool = False) -> Announcement:
    """Change the title or the words. New words (or the same words in another voice) are
    rendered again (a recording stays in its place) and what was approved no longer
    holds: a staffer's edit of a submitted, approved or scheduled item sends it back to
    the leaders' queue (``submitted``; its schedules stop playing meanwhile); a leader's
    (or admin's) edit carries their own approval, so it stays on the air with the new
    audio. A draft stays a draft."""
    if a.status == AnnouncementStatus.cancelled:
        raise AnnouncementError("announcement is cancelled",
                                "Bản tin đã bị huỷ nên không sửa được.")
    audit.record(session, actor, "edit", "announcement", a.id, title=title,
                 text_changed=text is not None and text != a.text)
    if title is not None:
        a.title = title
    if text is not None and (text != a.text or engine != a.engine_requested):
        items = with_words(a.items, text) if a.items else None
        _, media = renderer.render(session, items or text_items(text), repeat=a.repeat,
                                   engine=engine, voice=voice)
        for key, value in media.items():
            setattr(a, key, value)
        a.text, a.items, a.engine_requested = text, items, engine
        if not by_leader:
            approval.back_for_approval(session, a, actor, "content edited")
    approval.republish(session, a)
    return a


def with_words(items: list[dict], text: str) -> list[dict]:
    """A composition with its spoken words replaced by ``text`` (one speech item where
    the first one was, or after the opening chime), every recording kept."""
    kept = [i for i in items if i.get("kind") != "speech"]
    first = next((n for n, i in enumerate(items) if i.get("kind") == "speech"), None)
    if first is None:
        first = 1 if items and items[0].get("kind") == "chime" else 0
    else:
        first = sum(1 for i in items[:first] if i.get("kind") != "speech")
    return [*kept[:first], {"kind": "speech", "text": text}, *kept[first:]]


DELETABLE_BY_AUTHOR = (AnnouncementStatus.draft, AnnouncementStatus.submitted)


def aired(session: Session, a: Announcement) -> bool:
    """Whether any node reported playing one of its items (the log keeps those)."""
    prefixes = [item_ids.item_prefix(s.id) for s in a.schedules]
    return any(session.scalar(select(PlaybackLog.id).where(
        PlaybackLog.item_id.startswith(p, autoescape=True)).limit(1)) for p in prefixes)


def deletion_refusal(session: Session, a: Announcement, actor: str, role: Role
                     ) -> AnnouncementError | None:
    """Why ``actor`` may not delete ``a`` (None: they may). The pages ask it to offer the
    button only to whom it works.

    Who may delete what: its author (staff), while it is a draft or waiting for
    approval; a leader or admin, any that never aired. One that aired, or an emergency,
    stays for the broadcast log and the reports: cancel it instead (Huỷ)."""
    leader = role in (Role.leader, Role.admin)
    if not leader and (a.created_by != actor or a.status not in DELETABLE_BY_AUTHOR):
        return AnnouncementError(
            "only its author may delete it, while it is a draft or submitted",
            "Chỉ người soạn được xoá bản tin của mình khi nó còn là bản nháp hoặc đang chờ "
            "duyệt; bản tin đã duyệt do lãnh đạo xoá.", forbidden=True)
    if any(s.priority == Priority.emergency for s in a.schedules) or aired(session, a):
        return AnnouncementError("it aired: kept for the broadcast log",
                                 "Bản tin đã phát nên được giữ trong nhật ký phát: hãy dùng "
                                 "«Huỷ bản tin» thay vì xoá.")
    return None


def delete_announcement(session: Session, a: Announcement, actor: str, role: Role) -> None:
    """Delete an announcement that never went on the air, with its schedules (the nodes'
    plans drop them after the commit); who may: :func:`deletion_refusal`."""
    if (refusal := deletion_refusal(session, a, actor, role)) is not None:
        raise refusal
    targets = [s.targets for s in a.schedules if s.status == ScheduleStatus.active]
    audit.record(session, actor, "delete", "announcement", a.id, title=a.title or None,
                 status=a.status)
    if targets:
        effects_of(session).plans(*targets)
    session.delete(a)
    session.flush()


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
