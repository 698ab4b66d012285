"""The approval workflow of an announcement, every step in the audit log.

draft → submitted → approved (leader) → scheduled (an active schedule exists).
A leader sends a submitted item back to draft with a reason (required), which its author
sees on their pages. Editing the words of a submitted or approved announcement (by staff)
sends it back to the leaders' queue: its schedules stop playing until a leader approves
it again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.domain import AnnouncementStatus, ApprovalAction, DomainError, ScheduleStatus
from controller.models import Announcement, AuditEvent, Schedule
from controller.services import audit
from controller.services.effects import effects_of

Status = AnnouncementStatus
ACTION_WORDS = {ApprovalAction.submit: "gửi duyệt", ApprovalAction.approve: "duyệt",
                ApprovalAction.reject: "trả lại"}
STATUS_WORDS = {Status.draft: "nháp", Status.submitted: "chờ duyệt", Status.approved: "đã duyệt",
                Status.scheduled: "đã lên lịch", Status.cancelled: "đã huỷ"}
TRANSITIONS: dict[ApprovalAction, tuple[set[AnnouncementStatus], AnnouncementStatus]] = {
    ApprovalAction.submit: ({Status.draft}, Status.submitted),
    ApprovalAction.approve: ({Status.submitted}, Status.approved),
    ApprovalAction.reject: ({Status.submitted}, Status.draft),
}


class TransitionError(DomainError):
    """Not allowed from the current state (409)."""

    code = "announcement_state"


class ReasonRequired(TransitionError):
    """Sending an item back without saying why (422): its author could not act on it."""

    code = "reason_required"


def transition(session: Session, a: Announcement, action: ApprovalAction, actor: str,
               note: str = "") -> Announcement:
    """Submit, approve or reject; the nodes' plans follow (and the audio, once it plays)."""
    allowed_from, target = TRANSITIONS[action]
    if action == ApprovalAction.reject and not note.strip():
        raise ReasonRequired("reject: a note saying why is required",
                             "Hãy ghi lý do trả lại để người soạn biết cần sửa gì.")
    if a.status not in allowed_from:
        raise TransitionError(
            f"cannot {action} an announcement that is {a.status} "
            f"(only from {', '.join(sorted(allowed_from))})",
            f"Không thể {ACTION_WORDS[action]} bản tin đang ở trạng thái "
            f"«{STATUS_WORDS[a.status]}».")
    before = a.status
    a.status = target
    if target == Status.approved and active_schedules(a):
        a.status = Status.scheduled
    touch_schedules(a)
    audit.record(session, actor, action, "announcement", a.id, before=before, after=a.status,
                 note=note or None)
    republish(session, a, active_schedules(a))
    return a


def back_for_approval(session: Session, a: Announcement, actor: str, reason: str) -> None:
    """Content changed: an approval no longer holds, so a submitted, approved or scheduled
    item waits in the leaders' queue again (a draft stays a draft)."""
    if a.status in (Status.submitted, Status.approved, Status.scheduled):
        audit.record(session, actor, "back_for_approval", "announcement", a.id,
                     before=a.status, after=Status.submitted, note=reason)
        a.status = Status.submitted
        touch_schedules(a)


@dataclass(frozen=True)
class Review:
    """A leader's word on an item they sent back: shown to its author until it moves on."""

    actor: str
    at: datetime
    note: str


def returned_notes(session: Session, announcements: list[Announcement]
                   ) -> dict[int, Review]:
    """For each draft that a leader sent back (its latest approval step was a reject),
    who did, when and why. Read from the audit log, where the reject's note is kept."""
    drafts = {a.id: a for a in announcements if a.status == Status.draft}
    if not drafts:
        return {}
    found: dict[int, Review | None] = {}
    events = session.scalars(select(AuditEvent).where(
        AuditEvent.entity == "announcement",
        AuditEvent.entity_id.in_([str(i) for i in drafts])).order_by(AuditEvent.id))
    for event in events:
        steps = [{**event.detail, "action": event.action}, *event.detail.get("steps", [])]
        for step in steps:
            if step["action"] == ApprovalAction.reject:
                found[int(event.entity_id)] = Review(event.actor, event.at,
                                                     str(step.get("note") or ""))
            elif step["action"] in STEP_ACTIONS:
                found[int(event.entity_id)] = None
    return {aid: review for aid, review in found.items() if review is not None}


STEP_ACTIONS = {ApprovalAction.submit, ApprovalAction.approve, "back_for_approval"}
"""Steps after which an earlier reject no longer describes the item."""


def pending_count(session: Session) -> int:
    """Items waiting for a leader (the menu's badge)."""
    return session.scalar(select(func.count(Announcement.id)).where(
        Announcement.status == Status.submitted)) or 0


def approve_directly(session: Session, a: Announcement, actor: str, note: str) -> None:
    """A leader's own announcement (or an emergency): approved in one recorded step."""
    before = a.status
    a.status = Status.approved
    audit.record(session, actor, "approve", "announcement", a.id, before=before,
                 after=Status.approved, note=note)


def active_schedules(a: Announcement) -> list[Schedule]:
    return [s for s in a.schedules if s.status == ScheduleStatus.active]


def republish(session: Session, a: Announcement, schedules: list[Schedule] | None = None
              ) -> None:
    """After the commit, the plans of the nodes ``schedules`` reach (default: all of the
    announcement's) follow the change; when it is on the air its audio goes out too."""
    schedules = list(a.schedules) if schedules is None else schedules
    if not schedules:
        return
    fx = effects_of(session).plans(*(s.targets for s in schedules))
    if a.status == Status.scheduled:
        for s in schedules:
            fx.send_media(a.id, s.targets)


def touch_schedules(a: Announcement) -> None:
    """Plans compiled from now on carry this announcement's new state."""
    now_ms = int(time.time() * 1000)
    for s in a.schedules:
        s.published_ms = now_ms
