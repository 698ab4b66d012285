"""The approval workflow of an announcement, every step in the audit log.

draft → submitted → approved (leader) → scheduled (an active schedule exists).
Editing the content of a submitted or approved announcement sends it back to draft:
its schedules stop playing until a leader approves it again.
"""

from __future__ import annotations

import time

from sqlalchemy.orm import Session

from controller.models import Announcement
from controller.services import audit

TRANSITIONS = {
    "submit": ({"draft"}, "submitted"),
    "approve": ({"submitted"}, "approved"),
    "reject": ({"submitted"}, "draft"),
}


class TransitionError(ValueError):
    """Not allowed from the current state (409)."""


def transition(session: Session, a: Announcement, action: str, actor: str,
               note: str = "") -> Announcement:
    allowed_from, target = TRANSITIONS[action]
    if a.status not in allowed_from:
        raise TransitionError(
            f"cannot {action} an announcement that is {a.status} "
            f"(only from {', '.join(sorted(allowed_from))})")
    before = a.status
    a.status = target
    if target == "approved" and any(s.status == "active" for s in a.schedules):
        a.status = "scheduled"
    touch_schedules(a)
    audit.record(session, actor, action, "announcement", a.id, before=before, after=a.status,
                 note=note or None)
    return a


def back_to_draft(session: Session, a: Announcement, actor: str, reason: str) -> None:
    """Content changed: approval no longer holds."""
    if a.status != "draft":
        audit.record(session, actor, "back_to_draft", "announcement", a.id, before=a.status,
                     after="draft", note=reason)
        a.status = "draft"
        touch_schedules(a)


def approve_directly(session: Session, a: Announcement, actor: str, note: str) -> None:
    """A leader's own announcement (or an emergency): approved in one recorded step."""
    before = a.status
    a.status = "approved"
    audit.record(session, actor, "approve", "announcement", a.id, before=before,
                 after="approved", note=note)


def touch_schedules(a: Announcement) -> None:
    """Plans compiled from now on carry this announcement's new state."""
    now_ms = int(time.time() * 1000)
    for s in a.schedules:
        s.published_ms = now_ms
