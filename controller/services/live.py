"""Live sessions (phát trực tiếp): opened and ended by people, each audited once.

Opening a session stores a :class:`~controller.models.LiveBroadcast`, draws a fresh frame
key and notes the ``live_start`` command for its targets (sent after the commit, signed
by the link, like every command); ending it notes ``live_stop``. The sound itself does not
go through the database: :mod:`controller.live` publishes the frames.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller import localtime
from controller.domain import DomainError, Targets
from controller.models import LiveBroadcast, PlaybackLog, StreamSource, Upload, User
from controller.services import audit
from controller.services import targets as target_rules
from controller.services.effects import effects_of
from controller.services.targets import Address
from controller.settings import Settings
from mqtt_contract import (
    LIVE,
    ZONE_LIVE,
    Command,
    CommandKind,
    LiveSession,
    LiveSource,
    PlaybackEvent,
    Priority,
    TopicSpec,
    live_item_id,
    new_id,
)

SYSTEM_ACTOR = audit.Automatic.system
"""Who ends a session that ended by itself (its source closed or failed)."""


class LiveError(DomainError):
    """A live session that cannot be opened or ended (409)."""

    code = "live_refused"


@dataclass(frozen=True)
class FrameTopic:
    spec: TopicSpec
    commune: str
    params: dict[str, str]


@dataclass(frozen=True)
class Opened:
    record: LiveBroadcast
    session: LiveSession
    topics: list[FrameTopic]
    nodes: int


def frame_topics(nodes: list[Address], targets: Targets) -> list[FrameTopic]:
    """Where the frames go: once per targeted zone when only zones are named, else once
    per commune (nodes that hold no key for the session drop its frames unread)."""
    topics: list[FrameTopic] = []
    for commune in sorted({n.commune for n in nodes}):
        if targets.zones_only:
            present = {z for n in nodes if n.commune == commune for z in n.zones or ()}
            topics += [FrameTopic(ZONE_LIVE, commune, {"zone": z})
                       for z in sorted(set(targets.zones) & present)]
        else:
            topics.append(FrameTopic(LIVE, commune, {}))
    return topics


def open_session(session: Session, settings: Settings, targets: Targets, title: str,
                 source: LiveSource, actor: str, relay_slot_id: int | None = None,
                 stream_source_id: int | None = None) -> Opened:
    """Store the session and note its signed start command for the targets. Audited when
    a person opens it; a relay slot's airings (the slot was audited when it was made and
    approved) are rows of the broadcast log instead."""
    if unknown := target_rules.unknown_targets(session, targets):
        raise LiveError(f"unknown targets {unknown}", "Có khu vực hoặc cụm loa không tồn tại.")
    nodes = target_rules.addresses(session, targets)
    if not nodes:
        raise LiveError("no node targeted", "Chưa chọn cụm loa nào để phát.")
    spec = LiveSession(id=new_id(), key=base64.b64encode(os.urandom(32)).decode(),
                       source=source, title=title, sample_rate=settings.live_sample_rate,
                       frame_ms=settings.live_frame_ms, latency_ms=settings.live_latency_ms,
                       silence_s=settings.live_silence_s)
    record = LiveBroadcast(id=spec.id, title=title, source=source, targets=targets,
                           started_by=actor, frames=0, relay_slot_id=relay_slot_id,
                           stream_source_id=stream_source_id)
    session.add(record)
    if relay_slot_id is None:  # a slot's airings are the runner's: the broadcast log has them
        audit.record(session, actor, "live_start", "live", spec.id, targets=targets.stored(),
                     source=source.value, title=title or None)
    effects_of(session).send_command(targets, Command(kind=CommandKind.live_start, live=spec,
                                                      priority=Priority.live))
    return Opened(record, spec, frame_topics(nodes, targets), len(nodes))


def close_session(session: Session, session_id: str, actor: str, reason: str,
                  frames: int | None = None) -> LiveBroadcast:
    """End the session (once): note ``live_stop`` for its targets; audited."""
    record = session.get(LiveBroadcast, session_id)
    if record is None:
        raise LiveError("no such live session", "Không tìm thấy buổi phát trực tiếp này.")
    if record.ended_at is not None:
        return record
    record.ended_at, record.ended_by, record.end_reason = datetime.now(UTC), actor, reason[:300]
    if frames is not None:
        record.frames = frames
    if record.relay_slot_id is None:
        audit.record(session, actor, "live_stop", "live", session_id, reason=reason[:300])
    effects_of(session).send_command(record.targets, Command(
        kind=CommandKind.live_stop, item_id=session_id, priority=Priority.live))
    return record


def active_sessions(session: Session) -> list[LiveBroadcast]:
    return list(session.scalars(select(LiveBroadcast).where(LiveBroadcast.ended_at.is_(None))
                                .order_by(LiveBroadcast.started_at.desc())))


def node_counts(session: Session, session_id: str) -> tuple[int, int]:
    """(nodes heard playing now, nodes that played and ended), from their reports."""
    rows = session.execute(select(PlaybackLog.node_id, PlaybackLog.event).where(
        PlaybackLog.item_id == live_item_id(session_id))).all()
    started = {n for n, e in rows if e == PlaybackEvent.started}
    ended = {n for n, e in rows if e != PlaybackEvent.started}
    return len(started - ended), len(ended)


def targeted_nodes(session: Session, record: LiveBroadcast) -> list[Address]:
    return target_rules.addresses(session, record.targets)


def keep_recording(session: Session, session_id: str, sha256: str, fmt: str,
                   duration_s: float, size: int) -> LiveBroadcast | None:
    """Attach the session's recording, and list it with the uploads (named for people),
    so it can be composed into an announcement and scheduled again."""
    record = session.get(LiveBroadcast, session_id)
    if record is None:
        return None
    record.recording_sha256, record.recording_s = sha256, duration_s
    if session.scalar(select(Upload).where(Upload.sha256 == sha256,
                                           Upload.commune.is_(None) if record.commune is None
                                           else Upload.commune == record.commune)) is None:
        what = "Tiếp sóng" if record.source == LiveSource.relay else "Phát trực tiếp"
        when = record.started_at.astimezone(localtime.zone()).strftime("%H:%M %d/%m/%Y")
        session.add(Upload(sha256=sha256, commune=record.commune, format=fmt,
                           duration_s=duration_s, size=size,
                           original_name=f"{what} {record.title} {when}".replace("  ", " "),
                           uploaded_by=record.started_by))
    return record


RECORDINGS_LIMIT = 50
"""How many past sessions the recordings list gives at most (newest first)."""


@dataclass(frozen=True)
class Recorded:
    """A past session that left a recording, as people name it."""

    record: LiveBroadcast
    title: str
    """The session's title, or words for one without (never empty)."""
    speaker: str | None
    """Who spoke, in words: the official's full name, or the relayed station's name; None
    for an account that gave no full name (its username, ``started_by``, is all there is)."""


def recordings(session: Session, limit: int = RECORDINGS_LIMIT) -> list[Recorded]:
    """Ended sessions with a recording, newest first, at most ``limit``. Read from
    ``live_broadcasts``, which a commune's session sees only its own of
    (``controller/scope.py``)."""
    rows = list(session.scalars(
        select(LiveBroadcast)
        .where(LiveBroadcast.recording_sha256.is_not(None), LiveBroadcast.ended_at.is_not(None))
        .order_by(LiveBroadcast.started_at.desc(), LiveBroadcast.id).limit(limit)))
    people = {u.username: u.full_name for u in session.scalars(
        select(User).where(User.username.in_({r.started_by for r in rows})))}
    stations = {s.id: s.name for s in session.scalars(select(StreamSource).where(
        StreamSource.id.in_({r.stream_source_id for r in rows if r.stream_source_id})))}
    out = []
    for r in rows:
        relayed = r.source == LiveSource.relay
        if relayed:
            speaker = stations.get(r.stream_source_id or 0) or "Đài tiếp sóng"
        else:
            speaker = people.get(r.started_by) or None
        title = r.title.strip() or ("Tiếp sóng không tên" if relayed
                                    else "Phát trực tiếp không tên")
        out.append(Recorded(r, title, speaker))
    return out
