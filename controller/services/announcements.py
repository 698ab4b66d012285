"""Announcements: text rendered to audio (content-addressed), then approved and scheduled."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from broadcasts import render_text
from controller.media_store import MediaStore
from controller.models import Announcement
from controller.services import approval, audit

log = logging.getLogger(__name__)


class AnnouncementError(ValueError):
    """A request the API answers with a 4xx."""


def render_to_store(text: str, store: MediaStore, engine: str, voice: str) -> dict:
    """Synthesise ``text`` (chime + speech) and keep the result in the media store."""
    with tempfile.TemporaryDirectory() as tmp:
        audio = render_text(text, Path(tmp), engine=engine, voice=voice)
        sha, size = store.add(audio.path, audio.codec)
    if audio.fallback_reason:
        log.warning("TTS fell back to %s: %s", audio.engine, audio.fallback_reason)
    return {"media_sha256": sha, "media_size": size, "media_codec": audio.codec,
            "duration_s": audio.duration_s, "engine_used": audio.engine,
            "fallback_reason": audio.fallback_reason}


def create_announcement(session: Session, *, text: str, title: str, engine: str, voice: str,
                        store: MediaStore, actor: str) -> Announcement:
    media = render_to_store(text, store, engine, voice)
    a = Announcement(text=text, title=title, engine_requested=engine, status="draft",
                     created_by=actor, **media)
    session.add(a)
    session.flush()
    audit.record(session, actor, "create", "announcement", a.id, after="draft")
    return a


def update_content(session: Session, a: Announcement, *, text: str | None, title: str | None,
                   engine: str, voice: str, store: MediaStore, actor: str) -> Announcement:
    if a.status == "cancelled":
        raise AnnouncementError("announcement is cancelled")
    if title is not None:
        a.title = title
    if text is not None and text != a.text:
        for key, value in render_to_store(text, store, engine, voice).items():
            setattr(a, key, value)
        a.text, a.engine_requested = text, engine
        approval.back_to_draft(session, a, actor, "content edited")
    audit.record(session, actor, "edit", "announcement", a.id, title=title,
                 text_changed=text is not None)
    return a


def cancel_announcement(session: Session, a: Announcement, actor: str) -> None:
    if a.status == "cancelled":
        raise AnnouncementError("announcement already cancelled")
    before = a.status
    a.status = "cancelled"
    for s in a.schedules:
        s.status = "cancelled"
    approval.touch_schedules(a)
    audit.record(session, actor, "cancel", "announcement", a.id, before=before,
                 after="cancelled")


def get_announcement(session: Session, announcement_id: int) -> Announcement | None:
    return session.scalar(select(Announcement).where(Announcement.id == announcement_id)
                          .options(selectinload(Announcement.schedules)))


def list_announcements(session: Session, limit: int = 100) -> list[Announcement]:
    return list(session.scalars(
        select(Announcement).order_by(Announcement.id.desc()).limit(limit)
        .options(selectinload(Announcement.schedules))))
