from collections import Counter
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, status

from controller.api.deps import DbId, Leader, RuntimeDep, SessionDep, Staff, UserDep
from controller.api.errors import ErrorCode, api_error, content_refused, refused
from controller.api.schedules import clash, schedule_out
from controller.domain import ApprovalAction
from controller.models import Announcement
from controller.runtime import Runtime
from controller.schemas import (
    AnnouncementEdit,
    AnnouncementIn,
    AnnouncementOut,
    AuditOut,
    DeliveryOut,
    TransitionIn,
)
from controller.security import Role
from controller.services import announcements as service
from controller.services import approval, audit
from controller.services.content import ContentError
from controller.services.deliveries import deliveries_for
from controller.services.schedules import ScheduleConflict, ScheduleError, create_schedule
from controller.services.timing import Timing

router = APIRouter(prefix="/api/announcements", tags=["announcements"])
LEADERS = (Role.leader, Role.admin)


def to_out(session, runtime, a: Announcement,  # type: ignore[no-untyped-def]
           with_deliveries: bool = True) -> AnnouncementOut:
    now = datetime.now(UTC)
    since = min([a.created_at, *(s.start_at for s in a.schedules)]) - timedelta(minutes=1)
    views = deliveries_for(session, list(a.schedules), max(since, now - timedelta(days=2)),
                           now + runtime.horizon) if with_deliveries else []
    deliveries = [DeliveryOut(**{**v.__dict__, "start_offset_ms": v.start_offset_ms})
                  for v in views]
    return AnnouncementOut(
        id=a.id, title=a.title, text=a.text, created_at=a.created_at, created_by=a.created_by,
        status=a.status, engine_requested=a.engine_requested, engine_used=a.engine_used,
        fallback_reason=a.fallback_reason, media_sha256=a.media_sha256,
        media_codec=a.media_codec, media_size=a.media_size, duration_s=a.duration_s,
        schedules=[schedule_out(s) for s in a.schedules], deliveries=deliveries,
        summary=dict(Counter(d.status for d in deliveries)),
        history=[AuditOut.model_validate(e) for e in audit.history(session, "announcement",
                                                                      a.id)])


def load(session, announcement_id: int) -> Announcement:  # type: ignore[no-untyped-def]
    a = service.get_announcement(session, announcement_id)
    if a is None:
        raise api_error(404, ErrorCode.not_found, "Không tìm thấy bản tin này.")
    return a


@router.post("", response_model=AnnouncementOut, status_code=status.HTTP_201_CREATED)
def create(body: AnnouncementIn, user: Staff, runtime: RuntimeDep) -> AnnouncementOut:
    """Render the text to speech; the announcement starts as a draft.

    With ``play_now`` or ``start_at`` it is also scheduled once on ``nodes``/``zones``
    (default: every node): at once when a leader (or admin) creates it, otherwise it waits
    for a leader's approval. ``play_now`` starts a few seconds ahead, so every node has the
    audio and they all start at the same instant.
    """
    with runtime.db.session(commune=user.commune) as s:
        try:
            a = service.create_announcement(
                s, text=body.text, items=body.item_dicts(), repeat=body.repeat,
                title=body.title, engine=body.engine, voice=body.voice,
                renderer=runtime.content, actor=user.username)
        except ContentError as exc:
            raise content_refused(exc) from None
        if body.wants_schedule:
            start = body.start_at or datetime.now(UTC) + runtime.start_lead
            if user.role in LEADERS:
                approval.approve_directly(s, a, user.username, "approved by its author")
            else:
                approval.transition(s, a, ApprovalAction.submit, user.username,
                                    "submitted with a schedule")
            try:
                create_schedule(s, a, targets=body.targets, timing=Timing("once", start),
                                priority=body.priority, volume=None, repeat=1, sequence=None,
                                actor=user.username)
            except ScheduleError as exc:
                raise refused(422, exc) from None
            except ScheduleConflict as exc:
                raise clash(exc) from None
        announcement_id = a.id
    return get(announcement_id, user, runtime)


@router.get("", response_model=list[AnnouncementOut])
def list_all(user: UserDep, session: SessionDep, runtime: RuntimeDep,
             deliveries: bool = False) -> list[AnnouncementOut]:
    """Newest first. Per-node deliveries only on request: a recurring item on a thousand
    nodes has many (``GET /api/announcements/{id}`` always has them)."""
    return [to_out(session, runtime, a, deliveries)
            for a in service.list_announcements(session)]


@router.get("/{announcement_id}", response_model=AnnouncementOut)
def get(announcement_id: DbId, user: UserDep, runtime: RuntimeDep) -> AnnouncementOut:
    """The announcement, its schedules, each node's delivery and playback, its history."""
    with runtime.db.session(commune=user.commune) as s:
        return to_out(s, runtime, load(s, announcement_id))


@router.patch("/{announcement_id}", response_model=AnnouncementOut)
def edit(announcement_id: DbId, body: AnnouncementEdit, user: Staff,
         runtime: RuntimeDep) -> AnnouncementOut:
    """Edit title or text; new text is rendered again (a recording stays). A staffer's
    edit of a submitted or approved item sends it back for approval (``submitted``); a
    leader's keeps it approved (services/announcements.py)."""
    with runtime.db.session(commune=user.commune) as s:
        a = load(s, announcement_id)
        try:
            service.update_content(s, a, text=body.text, title=body.title, engine=body.engine,
                                   voice=body.voice, renderer=runtime.content,
                                   actor=user.username, by_leader=user.role in LEADERS)
        except service.AnnouncementError as exc:
            raise refused(409, exc) from None
        except ContentError as exc:
            raise content_refused(exc) from None
    return get(announcement_id, user, runtime)


@router.delete("/{announcement_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={403: {"description": "not yours, or no longer a draft"},
                          409: {"description": "it aired: cancel it instead"}})
def delete(announcement_id: DbId, user: Staff, runtime: RuntimeDep) -> None:
    """Delete one that never aired, with its schedules. Its author may while it is a
    draft or submitted; a leader or admin may any that never aired."""
    with runtime.db.session(commune=user.commune) as s:
        a = load(s, announcement_id)
        try:
            service.delete_announcement(s, a, user.username, user.role)
        except service.AnnouncementError as exc:
            raise refused(403 if exc.forbidden else 409, exc) from None


def _transition(announcement_id: DbId, action: ApprovalAction, note: str, user,  # type: ignore[no-untyped-def]
                runtime: Runtime) -> AnnouncementOut:
    with runtime.db.session(commune=user.commune) as s:
        a = load(s, announcement_id)
        try:
            approval.transition(s, a, action, user.username, note)
        except approval.ReasonRequired as exc:
            raise refused(422, exc) from None
        except approval.TransitionError as exc:
            raise refused(409, exc) from None
    return get(announcement_id, user, runtime)


@router.post("/{announcement_id}/submit", response_model=AnnouncementOut)
def submit(announcement_id: DbId, body: TransitionIn, user: Staff,
           runtime: RuntimeDep) -> AnnouncementOut:
    return _transition(announcement_id, ApprovalAction.submit, body.note, user, runtime)


@router.post("/{announcement_id}/approve", response_model=AnnouncementOut)
def approve(announcement_id: DbId, body: TransitionIn, user: Leader,
            runtime: RuntimeDep) -> AnnouncementOut:
    """A leader approves; with an active schedule it goes on the nodes' plans at once."""
    return _transition(announcement_id, ApprovalAction.approve, body.note, user, runtime)


@router.post("/{announcement_id}/reject", response_model=AnnouncementOut)
def reject(announcement_id: DbId, body: TransitionIn, user: Leader,
           runtime: RuntimeDep) -> AnnouncementOut:
    """A leader sends it back to draft, with a note saying why (required: 422 without);
    its author sees the note on their pages."""
    return _transition(announcement_id, ApprovalAction.reject, body.note, user, runtime)


@router.post("/{announcement_id}/cancel", response_model=AnnouncementOut)
def cancel(announcement_id: DbId, user: Staff, runtime: RuntimeDep) -> AnnouncementOut:
    """Cancel: every node's plan drops it (a node playing it stops)."""
    with runtime.db.session(commune=user.commune) as s:
        a = load(s, announcement_id)
        try:
            service.cancel_announcement(s, a, user.username)
        except service.AnnouncementError as exc:
            raise refused(409, exc) from None
    return get(announcement_id, user, runtime)
