"""Camera alerts for the security officers: list and filter, the lifecycle
(acknowledge → resolve | false alarm, each with who, when and a note), snapshots, and a
Server-Sent Events stream that pushes each new alert to the open desks as it arrives."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response, StreamingResponse

from controller import localtime
from controller.alert_bus import AlertEvent
from controller.api.deps import (
    DB_ID_MAX,
    CurrentUser,
    Day,
    Instant,
    Officer,
    RuntimeDep,
    SessionDep,
)
from controller.api.errors import ErrorCode, api_error
from controller.domain import AlertState
from controller.runtime import Runtime
from controller.schemas import AlertOut, AuditOut, TransitionIn
from controller.services import alerts as service
from controller.services import evidence as evidence_service

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/alerts", tags=["alerts"])

POLL_S = 3.0
"""How often an open stream also looks in the database: a fallback for an event a stalled
connection dropped or that came while this replica's listener was reconnecting (alerts
from other replicas arrive through ``controller/alert_bus.py`` at once). Doubles as the
keep-alive for proxies."""
CATCH_UP = timedelta(seconds=30)
"""How far back each poll looks (by arrival time): more than a commit can take."""


class AlertView(AlertOut):
    """An alert with its lifecycle: who acknowledged and closed it, when, and the notes."""

    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    handled_by: str | None = None
    handled_at: datetime | None = None
    note: str = ""

    @classmethod
    def from_record(cls, r: object) -> AlertView:
        base = AlertOut.from_record(r).model_dump()
        extra = {k: getattr(r, k) for k in ("acknowledged_by", "acknowledged_at", "handled_by",
                                             "handled_at")}
        return cls(**base, **extra, note=getattr(r, "note", "") or "")


class AlertDetail(AlertView):
    history: list[AuditOut]


@router.get("", response_model=list[AlertView])
def list_alerts(user: Officer, session: SessionDep, node: str | None = None,
                camera: str | None = None, kind: str | None = None,
                state: AlertState | Literal[""] | None = None, zone: str | None = None,
                day: Annotated[Day | None, Query(description="local day (the commune's time zone)")
                               ] = None,
                since: Instant | None = None, until: Instant | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AlertView]:
    """Camera alerts, newest first, filtered by zone, node, camera, kind, state and time."""
    rows = service.list_alerts(session, node=node, camera=camera, kind=kind, state=state,
                               zone=zone, day=day, since=since, until=until, limit=limit)
    return [AlertView.from_record(r) for r in rows]


def sse(event: str, data: dict, event_id: int | None = None) -> str:
    """One Server-Sent Events message (``id`` lets a reconnecting browser resume)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def alert_events(request: Request, runtime: Runtime, last_id: int | None,
                       max_s: float, commune: str | None = None) -> AsyncIterator[str]:
    """New alerts (``alert``) and lifecycle changes (``update``) until the client leaves or
    ``max_s`` passes (the browser then reconnects, and its session is checked again).
    A commune's officer gets that commune's only (``commune``; None: the province's)."""
    hub = runtime.alerts
    sub = hub.subscribe()
    sent: deque[int] = deque(maxlen=2000)
    deadline = time.monotonic() + max_s

    def replay(after_row: int) -> list[dict]:
        with runtime.db.session(commune=commune) as s:
            rows = service.newer_than(s, after_row)
            names = service.labels(s) if rows else None
            return [service.event_of(r, names) for r in rows]

    def poll(after_row: int, received_after: datetime) -> list[dict]:
        with runtime.db.session(commune=commune) as s:
            rows = service.catch_up(s, after_row, received_after)
            names = service.labels(s) if rows else None
            return [service.event_of(r, names) for r in rows]

    def current_row() -> int:
        with runtime.db.session(commune=commune) as s:
            return service.last_row(s)

    try:
        yield "retry: 2000\n\n"  # the browser reconnects after 2 s
        checked = datetime.now(UTC)
        if last_id is not None:  # a reconnect: replay what it missed
            base = last_id
            for data in await run_in_threadpool(replay, last_id):
                sent.append(data["row"])
                yield sse("alert", data, data["row"])
        else:
            base = await run_in_threadpool(current_row)
        while (left := deadline - time.monotonic()) > 0:
            if await request.is_disconnected():
                break
            try:
                event = await asyncio.wait_for(sub.queue.get(), timeout=min(POLL_S, left))
                if commune is not None and event.data.get("commune") != commune:
                    continue  # another commune's alert: not this desk's
            except TimeoutError:
                since, checked = checked - CATCH_UP, datetime.now(UTC)
                for data in await run_in_threadpool(poll, base, since):
                    if data["row"] not in sent:
                        sent.append(data["row"])
                        yield sse("alert", data, data["row"])
                yield ": keep-alive\n\n"
                continue
            if event.kind == "alert":
                if event.data["row"] in sent:
                    continue
                sent.append(event.data["row"])
                yield sse("alert", event.data, event.data["row"])
            else:
                yield sse(event.kind, event.data)
    finally:
        hub.unsubscribe(sub)


@router.get("/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def stream(request: Request, user: Officer, runtime: RuntimeDep,
                 last_event_id: Annotated[int | None, Header(ge=0, le=DB_ID_MAX)] = None,
                 max_s: Annotated[float, Query(gt=0, le=3600)] = 600) -> StreamingResponse:
    """Server-Sent Events: ``alert`` for each new alert (within a second of its arrival at
    this controller), ``update`` when an alert's state changes. Reconnecting with
    ``Last-Event-ID`` replays the alerts missed meanwhile. The stream ends after ``max_s``;
    the browser's EventSource reconnects, which re-checks the session."""
    return StreamingResponse(
        alert_events(request, runtime, last_event_id, max_s, user.commune),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/{alert_id}", response_model=AlertDetail)
def get_alert(alert_id: str, user: Officer, session: SessionDep) -> AlertDetail:
    """One alert with its lifecycle history (who did what, when, with which note)."""
    record = service.get_alert(session, alert_id)
    if record is None:
        raise HTTPException(404, f"alert {alert_id} not found")
    return AlertDetail(**AlertView.from_record(record).model_dump(),
                       history=[AuditOut.model_validate(e)
                                for e in service.history(session, alert_id)])


def _transition(alert_id: str, action: str, body: TransitionIn, user: CurrentUser,
                runtime: Runtime) -> AlertView:
    with runtime.db.session(commune=user.commune) as s:
        record = service.get_alert(s, alert_id)
        if record is None:
            raise HTTPException(404, f"alert {alert_id} not found")
        try:
            service.transition(s, record, action, user.username, body.note)
        except service.ReasonRequired:
            raise api_error(422, ErrorCode.invalid_request,
                            "Hãy ghi ngắn gọn lý do đây là báo động giả.") from None
        except service.AlertTransitionError as exc:
            raise HTTPException(409, str(exc)) from None
        s.flush()
        out = AlertView.from_record(record)
        runtime.alert_bus.announce(s, AlertEvent.update, record)
    return out


@router.post("/{alert_id}/acknowledge", response_model=AlertView)
def acknowledge(alert_id: str, body: TransitionIn, user: Officer,
                runtime: RuntimeDep) -> AlertView:
    """An officer takes the alert (new → acknowledged)."""
    return _transition(alert_id, "acknowledge", body, user, runtime)


@router.post("/{alert_id}/resolve", response_model=AlertView)
def resolve(alert_id: str, body: TransitionIn, user: Officer, runtime: RuntimeDep) -> AlertView:
    """Handled on the spot (→ resolved); the note says what was done."""
    return _transition(alert_id, "resolve", body, user, runtime)


@router.post("/{alert_id}/false-alarm", response_model=AlertView)
def false_alarm(alert_id: str, body: TransitionIn, user: Officer,
                runtime: RuntimeDep) -> AlertView:
    """Not a real event (→ false_alarm): kept, so detector mistakes can be counted."""
    return _transition(alert_id, "false_alarm", body, user, runtime)


@router.get("/{alert_id}/evidence", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}})
def evidence(alert_id: str, user: Officer, session: SessionDep,
             runtime: RuntimeDep) -> Response:
    """The snapshot as evidence, to download: boxes labelled in Vietnamese, and what,
    when, where (node and villages by name) and which camera written under the picture."""
    record = service.get_alert(session, alert_id)
    if record is None or record.snapshot_sha256 is None:
        raise HTTPException(404, "no such alert snapshot")
    names = service.labels(session)
    caption = evidence_service.Caption(
        kind=service.KIND_LABELS.get(record.kind, "Cảnh báo camera"),
        place=names.place(record.node_id), camera=names.camera(record.node_id, record.camera),
        at=record.at, confidence=record.confidence)
    jpeg = runtime.media.path(record.snapshot_sha256, "jpg").read_bytes()
    try:
        drawn = evidence_service.annotate(jpeg, list(record.boxes or []), caption)
    except (OSError, ValueError):
        log.warning("alert %s: its snapshot could not be drawn on", alert_id, exc_info=True)
        raise HTTPException(404, "no such alert snapshot") from None
    stamp = localtime.local(record.at)
    filename = f"bang-chung-canh-bao-{stamp:%Y%m%d-%H%M%S}.jpg" if stamp else "bang-chung.jpg"
    return Response(drawn, media_type="image/jpeg", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "private, no-store"})


@router.get("/{alert_id}/before", response_class=FileResponse,
            responses={200: {"content": {"image/jpeg": {}}}})
def before_snapshot(alert_id: str, user: Officer, session: SessionDep,
                    runtime: RuntimeDep) -> FileResponse:
    """The picture before the event (a dumping alert: the place before the object came)."""
    record = service.get_alert(session, alert_id)
    return _jpeg(runtime, record.before_sha256 if record else None)


@router.get("/{alert_id}/snapshot", response_class=FileResponse,
            responses={200: {"content": {"image/jpeg": {}}}})
def snapshot(alert_id: str, user: Officer, session: SessionDep,
             runtime: RuntimeDep) -> FileResponse:
    """The alert's JPEG snapshot, boxes drawn."""
    record = service.get_alert(session, alert_id)
    return _jpeg(runtime, record.snapshot_sha256 if record else None)


def _jpeg(runtime: RuntimeDep, sha256: str | None) -> FileResponse:
    """A stored alert picture by content; 404 when the alert or the picture is not there."""
    if sha256 is None:
        raise HTTPException(404, "no such alert snapshot")
    return FileResponse(runtime.media.path(sha256, "jpg"), media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=86400, immutable"})
