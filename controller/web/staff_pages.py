"""Staff and leader pages beyond the first set: one announcement (edit, delete, its
history and the leader's note) and a node's plan for the next hours.

Kept apart from ``pages.py`` so that each page's logic has one small home; the routes use
the same page dependencies, ``render`` and error handling (``PageRoute``). Changes go
through the JSON API from ``static/announcement.js``, as on every other page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from controller.api.deps import DbId, NodeId, RuntimeDep, home_commune
from controller.api.deps import SessionDep as DbSession
from controller.domain import PLAYABLE, AnnouncementStatus
from controller.models import AuditEvent, Node
from controller.security import Role
from controller.services import announcements as announcement_service
from controller.services import approval, audit
from controller.services import content as content_service
from controller.services import schedules as schedule_service
from controller.services import targets as target_rules
from controller.services.plans import CompileContext, plan_items, timing_of
from controller.services.timing import occurrences
from controller.web import views
from controller.web.pages import PageRoute, PageStaff, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

ACTION_LABELS = {"create": "Soạn bản tin", "edit": "Sửa", "submit": "Gửi duyệt",
                 "approve": "Duyệt", "reject": "Trả lại", "schedule": "Lên lịch phát",
                 "cancel_schedule": "Huỷ một lịch phát", "cancel": "Huỷ bản tin",
                 "back_for_approval": "Chờ duyệt lại (nội dung đã sửa)",
                 "back_to_draft": "Về bản nháp (nội dung đã sửa)",
                 "emergency": "Phát khẩn cấp", "delete": "Xoá"}
SYSTEM_NOTES = {"approved by its author": "lãnh đạo soạn và tự duyệt",
                "submitted with a schedule": "gửi duyệt kèm lịch phát",
                "content edited": "nội dung đã sửa",
                "emergency sent by a leader": "lãnh đạo gửi khẩn cấp"}
"""Notes the services write themselves (English in the audit log), in words for people;
a person's own note is shown as they wrote it."""


@dataclass(frozen=True)
class Step:
    at: datetime
    who: str
    what: str
    note: str


def history_steps(events: list[AuditEvent], names: dict[str, str]) -> list[Step]:
    """An announcement's audit records, one line per step, in Vietnamese."""
    steps = []
    for event in events:
        for step in [{**event.detail, "action": event.action}, *event.detail.get("steps", [])]:
            note = str(step.get("note") or "")
            steps.append(Step(event.at, names.get(event.actor, event.actor),
                              ACTION_LABELS.get(step["action"], "Thao tác khác"),
                              SYSTEM_NOTES.get(note, note)))
    return steps


@router.get("/announcements/{announcement_id}", response_class=HTMLResponse)
def announcement_page(request: Request, announcement_id: DbId, user: PageStaff,
                      session: DbSession, runtime: RuntimeDep) -> HTMLResponse:
    """One announcement: listen, edit the words (and see how they will be read), send it
    for approval, delete it when the rules allow; the leader's note when it came back."""
    a = announcement_service.get_announcement(session, announcement_id)
    if a is None:
        return render(request, "error.html", user, status=404, title="Không tìm thấy",
                      message="Không tìm thấy bản tin này; có thể nó đã bị xoá.")
    names = views.people_names(session)
    review = approval.returned_notes(session, [a]).get(a.id)
    refusal = announcement_service.deletion_refusal(session, a, user.username, user.role)
    leader = user.role in (Role.leader, Role.admin)
    spoken = content_service.reading(session, home_commune(user, runtime), a.text)
    return render(request, "announcement.html", user, a=a, review=review, names=names,
                  spoken=spoken,
                  history=history_steps(audit.history(session, "announcement", a.id), names),
                  can_delete=refusal is None, delete_refusal=refusal.message if refusal else "",
                  editable=a.status != AnnouncementStatus.cancelled, leader=leader,
                  has_recording=any(i.get("kind") == "recording" for i in a.items or ()),
                  describe_rule=views.describe_rule, describe_targets=views.target_namer(session))


@dataclass(frozen=True)
class PlannedItem:
    at: datetime
    title: str
    priority: str
    length_s: float
    volume: int | None


def waiting_items(session: DbSession, ctx: CompileContext, node: Node
                  ) -> list[tuple[datetime, str, str]]:
    """Occurrences in the horizon that would reach ``node`` but are not in its plan
    because their announcement is not approved yet: (time, title, status)."""
    groups = target_rules.group_members(session)
    found = []
    for s in schedule_service.list_schedules(session):
        a = s.announcement
        if a.status in PLAYABLE or a.status == AnnouncementStatus.cancelled:
            continue
        if not target_rules.matches(s.targets, node, groups):
            continue
        found += [(at, a.title or a.text[:60], a.status)
                  for at in occurrences(timing_of(s), ctx.now, ctx.now + ctx.horizon)]
    return sorted(found)


@router.get("/nodes/{node_id}/plan", response_class=HTMLResponse)
def node_plan_page(request: Request, node_id: NodeId, user: PageStaff, session: DbSession,
                   runtime: RuntimeDep) -> HTMLResponse:
    """What the node will play in the plan's horizon (48 h by default), by title and local
    time: the same compiler that builds the plan the node gets (holidays, quiet hours and
    priorities applied)."""
    node = session.scalar(select(Node).where(Node.node_id == node_id))
    if node is None:
        return render(request, "error.html", user, status=404, title="Không tìm thấy",
                      message="Không tìm thấy cụm loa này.")
    with runtime.db.session() as every:  # the node's real plan holds province bulletins too
        ctx = CompileContext.load(every, runtime.horizon)
        items = [PlannedItem(i.start_at, i.title or "Bản tin", i.priority.value,
                             i.media.duration_s * i.repeat, i.volume)
                 for i in plan_items(ctx, node).items]
    quiet = ctx.quiet_window(node)
    zones = [name for _, name, _ in views.zone_choices(session, [node])]
    return render(request, "node_plan.html", user, node=node, items=items, zones=zones,
                  waiting=waiting_items(session, ctx, node),
                  hours=int(runtime.horizon.total_seconds() // 3600),
                  until=ctx.now + ctx.horizon, quiet=quiet,
                  acked=bool(node.plan_version and node.plan_version_acked == node.plan_version))
