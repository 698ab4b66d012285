"""Each node's delivery and playback status for a schedule, derived, never stored twice.

planned   the node's newest plan holds the item, the node has not confirmed it yet;
delivered the node reported (telemetry) a plan version that includes the item;
started / finished / failed / preempted / stopped / skipped: from its playback reports;
cancelled the schedule was cancelled before it played.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.domain import DeliveryStatus, ScheduleStatus
from controller.models import Node, PlaybackLog, Schedule
from controller.services import targets as target_rules
from controller.services.item_ids import item_id
from controller.services.plans import timing_of
from controller.services.timing import occurrences
from mqtt_contract import PlaybackEvent

PLAYED = (PlaybackEvent.started, PlaybackEvent.finished, PlaybackEvent.preempted,
          PlaybackEvent.stopped)


@dataclass
class DeliveryView:
    node_id: str
    commune: str
    schedule_id: int
    item_id: str
    status: DeliveryStatus | PlaybackEvent
    planned_at: datetime
    actual_start: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    detail: str = ""

    @property
    def start_offset_ms(self) -> float | None:
        if self.actual_start is None:
            return None
        return round((self.actual_start - self.planned_at).total_seconds() * 1000, 1)


def deliveries_for(session: Session, schedules: list[Schedule], since: datetime,
                   until: datetime) -> list[DeliveryView]:
    nodes = list(session.scalars(select(Node).order_by(Node.node_id)))
    groups = target_rules.group_members(session)
    wanted: dict[tuple[str, str], DeliveryView] = {}
    for s in schedules:
        for at in occurrences(timing_of(s), since, until):
            iid = item_id(s.id, at)
            for node in nodes:
                if target_rules.matches(s.targets, node, groups):
                    acked = (node.plan_version_acked or 0) >= s.published_ms
                    status = (DeliveryStatus.cancelled
                              if s.status == ScheduleStatus.cancelled
                              else DeliveryStatus.delivered if acked else DeliveryStatus.planned)
                    wanted[(node.node_id, iid)] = DeliveryView(
                        node.node_id, node.commune, s.id, iid, status, at)
    apply_reports(session, wanted)
    return sorted(wanted.values(), key=lambda d: (d.planned_at, d.node_id))


def apply_reports(session: Session, wanted: dict[tuple[str, str], DeliveryView]) -> None:
    item_ids = {iid for _, iid in wanted}
    if not item_ids:
        return
    rows = session.scalars(select(PlaybackLog).where(PlaybackLog.item_id.in_(item_ids))
                           .order_by(PlaybackLog.actual_at, PlaybackLog.id))
    for r in rows:
        view = wanted.get((r.node_id, r.item_id))
        if view is None:
            continue
        if r.event == PlaybackEvent.started and view.status not in (
                PlaybackEvent.started, *DeliveryStatus):
            continue  # never step back from a final state
        view.status, view.detail, view.planned_at = PlaybackEvent(r.event), r.detail, r.planned_at
        if r.event in PLAYED and view.actual_start is None:
            view.actual_start = r.actual_at
        if r.duration_s is not None and r.event != "started":
            view.duration_s = r.duration_s
            view.finished_at = r.actual_at + timedelta(seconds=r.duration_s)
