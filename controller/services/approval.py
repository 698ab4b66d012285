"""The approval workflow of an announcement, every step in the audit log.

draft → submitted → approved (leader) → scheduled (an active schedule exists).
Editing the content of a submitted or approved announcement sends it back to draft:
its schedules stop playing until a leader approves it again.
"""

from __future__ import annotations

import time

from sqlalchemy.orm import Session

from controller.domain import AnnouncementStatus, ApprovalAction, DomainError, ScheduleStatus
from controller.models import Announcement, Schedule
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


def transition(session: Session, a: Announcement, action: ApprovalAction, actor: str,
               note: str = "") -> Announcement:
    """Submit, approve or reject; the nodes' plans follow (and the audio, once it plays)."""
    allowed_from, target = TRANSITIONS[action]
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


def back_to_draft(session: Session, a: Announcement, actor: str, reason: str) -> None:
    """Content changed: approval no longer holds."""
    if a.status != Status.draft:
        audit.record(session, actor, "back_to_draft", "announcement", a.id, before=a.status,
                     after=Status.draft, note=reason)
        a.status = Status.draft
        touch_schedules(a)


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
