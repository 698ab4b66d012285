"""Announcements: render the text to audio, target nodes, and hand plans to the link."""

from __future__ import annotations

import logging
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from broadcasts import render_text
from controller.media_store import MediaStore
from controller.models import Announcement, Delivery, Node

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


def create_announcement(session: Session, *, text: str, title: str, start_at: datetime | None,
                        priority: str, engine: str, voice: str, store: MediaStore,
                        lead: timedelta, nodes: list[Node]) -> Announcement:
    now = datetime.now(UTC)
    if start_at is None:
        start_at = now + lead
    elif start_at.tzinfo is None:
        raise AnnouncementError("start_at must carry a time zone (e.g. +07:00 or Z)")
    elif start_at < now:
        raise AnnouncementError("start_at is in the past")
    if not nodes:
        raise AnnouncementError("no nodes to play on: register nodes first")
    media = render_to_store(text, store, engine, voice)
    announcement = Announcement(text=text, title=title, start_at=start_at, priority=priority,
                                engine_requested=engine, status="scheduled", **media)
    session.add(announcement)
    session.flush()
    for node in nodes:
        session.add(Delivery(announcement_id=announcement.id, node_pk=node.id,
                             planned_at=start_at, status="planned"))
    session.flush()
    return announcement


def get_announcement(session: Session, announcement_id: int) -> Announcement | None:
    return session.scalar(
        select(Announcement).where(Announcement.id == announcement_id)
        .options(selectinload(Announcement.deliveries).selectinload(Delivery.node))
    )


def list_announcements(session: Session, limit: int = 100) -> list[Announcement]:
    return list(session.scalars(
        select(Announcement).order_by(Announcement.id.desc()).limit(limit)
        .options(selectinload(Announcement.deliveries).selectinload(Delivery.node))
    ))


def cancel_announcement(session: Session, announcement: Announcement) -> list[Node]:
    """Cancel; return the nodes whose plans must drop it."""
    announcement.status = "cancelled"
    for d in announcement.deliveries:
        if d.status in ("planned", "delivered"):
            d.status = "cancelled"
    return [d.node for d in announcement.deliveries]
