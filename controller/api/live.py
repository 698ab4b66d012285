"""Live sessions (phát trực tiếp) over the API: open one, send it sound, see it, end it.

``POST /api/live`` opens a session for the targets (its start command goes to the nodes
at once); the browser then sends its microphone (WebM/Opus from ``MediaRecorder``, or
any container ffmpeg reads) over the WebSocket ``/api/live/{id}/audio``; closing the
socket or ``POST /api/live/{id}/stop`` ends it. Staff and leaders (and admins) may.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from controller.api.deps import SESSION_COOKIE, RuntimeDep, SessionDep, Staff
from controller.api.errors import refused
from controller.domain import Targets
from controller.live import LiveFeed
from controller.models import LiveBroadcast
from controller.runtime import Runtime
from controller.schemas import In
from controller.security import Role
from controller.services import live as live_service
from controller.services import users
from controller.services.live import LiveError
from mqtt_contract import LiveSource

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/live", tags=["live"])
SessionId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="a live session id")]
MAX_CHUNK_BYTES = 256 * 1024
"""One WebSocket message of sound: MediaRecorder sends a few KB every quarter second."""
LIVE_ROLES = frozenset({Role.staff, Role.leader, Role.admin})


class LiveIn(In):
    targets: Targets = Field(default_factory=Targets.everyone)
    title: str = Field(default="", max_length=200)


class LiveOut(BaseModel):
    id: str
    title: str
    started_by: str
    started_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    elapsed_s: float
    nodes: int
    """Nodes the session was sent to."""
    playing: int
    """Nodes that report playing it now."""
    ended_nodes: int
    latency_ms: int
    chime_s: float
    frames: int
    bytes: int | None
    """Frame bytes sent to each node so far (while on air; every node gets each once)."""
    audio: str
    """The WebSocket path that takes the session's sound."""
    recording: str | None
    """Once it ended: its recording, an upload an announcement can be made of
    (``{"kind": "recording", "upload": …}``)."""
    recording_s: float | None


def _out(runtime: Runtime, session: SessionDep, record: LiveBroadcast) -> LiveOut:
    feed = runtime.live.feed(record.id)
    playing, ended = live_service.node_counts(session, record.id)
    end = record.ended_at or datetime.now(UTC)
    return LiveOut(
        id=record.id, title=record.title, started_by=record.started_by,
        started_at=record.started_at, ended_at=record.ended_at, end_reason=record.end_reason,
        elapsed_s=round((end - record.started_at).total_seconds(), 1),
        nodes=len(live_service.targeted_nodes(session, record)), playing=playing,
        ended_nodes=ended, latency_ms=runtime.settings.live_latency_ms,
        chime_s=feed.chime_s if feed else 0.0,
        frames=feed.stats.frames if feed else record.frames,
        bytes=feed.stats.bytes if feed else None, audio=f"/api/live/{record.id}/audio",
        recording=record.recording_sha256, recording_s=record.recording_s)


class RecordingOut(BaseModel):
    """A past session's recording, for composing it into an announcement."""

    title: str
    """The session's title in words (words of its kind when it had none)."""
    source: LiveSource
    """``microphone``: an official spoke live; ``relay``: a station was relayed."""
    started_at: datetime
    ended_at: datetime
    duration_s: float
    """How long the recording is."""
    speaker: str | None
    """Who spoke: the official's full name, or the station's name (None: an account
    without a full name; ``started_by`` is its username)."""
    started_by: str
    upload: str
    """The recording as an upload: ``{"kind": "recording", "upload": …}`` in an
    announcement's items."""


@router.get("/recordings", response_model=list[RecordingOut])
def recordings(user: Staff, session: SessionDep,
               limit: Annotated[int, Query(ge=1, le=200)] = live_service.RECORDINGS_LIMIT,
               ) -> list[RecordingOut]:
    """Past live and relay sessions that left a recording, newest first (a commune's
    accounts see their commune's only): record and rebroadcast."""
    return [RecordingOut(
        title=r.title, source=r.record.source, started_at=r.record.started_at,
        ended_at=r.record.ended_at or r.record.started_at,
        duration_s=round(r.record.recording_s or 0.0, 1), speaker=r.speaker,
        started_by=r.record.started_by, upload=r.record.recording_sha256 or "")
        for r in live_service.recordings(session, limit)]


@router.post("", response_model=LiveOut, status_code=201)
def start(body: LiveIn, user: Staff, runtime: RuntimeDep, session: SessionDep) -> LiveOut:
    """Open a live session on the targets (default: every node); send its sound next."""
    try:
        opened = runtime.live.open(body.targets, body.title, LiveSource.microphone,
                                   user.username, commune=user.commune)
    except LiveError as exc:
        raise refused(409, exc) from None
    record = session.get(LiveBroadcast, opened.session.id)
    assert record is not None
    return _out(runtime, session, record)


@router.get("/{session_id}", response_model=LiveOut)
def status(session_id: SessionId, user: Staff, runtime: RuntimeDep,
           session: SessionDep) -> LiveOut:
    """How the session stands: elapsed time, nodes playing it."""
    record = session.get(LiveBroadcast, session_id)
    if record is None:
        raise refused(404, LiveError("no such live session",
                                     "Không tìm thấy buổi phát trực tiếp này."))
    return _out(runtime, session, record)


@router.post("/{session_id}/stop", response_model=LiveOut)
def stop(session_id: SessionId, user: Staff, runtime: RuntimeDep,
         session: SessionDep) -> LiveOut:
    """End the session: its sound stops, its nodes let their amplifiers go."""
    if session.get(LiveBroadcast, session_id) is None:  # none, or another commune's
        raise refused(404, LiveError("no such live session",
                                     "Không tìm thấy buổi phát trực tiếp này."))
    try:
        runtime.live.close(session_id, user.username)
    except LiveError as exc:
        raise refused(404, exc) from None
    session.expire_all()
    record = session.get(LiveBroadcast, session_id)
    assert record is not None
    return _out(runtime, session, record)


def _socket_user(websocket: WebSocket, runtime: Runtime, session_id: str) -> str | None:
    """The signed-in person behind a WebSocket (session cookie or ``?token=``), if they
    may speak live, in a session of their own commune (a province account: any), and
    only from our own pages (the Origin is this host: a cross-site page cannot open the
    socket with the visitor's cookie)."""
    origin, host = websocket.headers.get("origin"), websocket.headers.get("host")
    if origin is not None and origin.split("://", 1)[-1] != host:
        return None
    credential = websocket.cookies.get(SESSION_COOKIE) or websocket.query_params.get("token")
    if not credential:
        return None
    with runtime.db.session() as s:
        principal = users.resolve(s, runtime.secret_key, credential)
        if principal is None or Role(principal.user.role) not in LIVE_ROLES:
            return None
        user = principal.user
    with runtime.db.session(commune=user.commune) as s:
        if s.get(LiveBroadcast, session_id) is None:
            return None  # another commune's session, or none
    return user.username


@router.websocket("/{session_id}/audio")
async def audio(websocket: WebSocket, session_id: SessionId) -> None:
    """The session's sound, as binary messages; the session ends when the socket does."""
    runtime: Runtime = websocket.app.state.runtime
    username = await run_in_threadpool(_socket_user, websocket, runtime, session_id)
    feed = runtime.live.feed(session_id)
    if username is None or feed is None or feed.spec.source != LiveSource.microphone:
        await websocket.close(code=4403)
        return
    await websocket.accept()
    await websocket.send_text(json.dumps({"ready": True, "chime_s": feed.chime_s}))
    reason = "the speaker's page closed"
    try:
        while feed.running:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            chunk = message.get("bytes")
            if not chunk or len(chunk) > MAX_CHUNK_BYTES:
                continue
            if not await run_in_threadpool(_feed, feed, chunk):
                reason = feed.stats.ended or "the source failed"
                break
    except WebSocketDisconnect:
        pass
    finally:
        if runtime.live.feed(session_id) is feed:
            await run_in_threadpool(runtime.live.close, session_id, username, reason)


def _feed(feed: LiveFeed, chunk: bytes) -> bool:
    return feed.feed(chunk)
