"""Playback reports from nodes: the broadcast log, and each delivery's status.

Reports arrive at least once (the node's outbox resends until acknowledged), so each is
stored once by its id and a replay changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controller.models import Delivery, Node, PlaybackLog
from controller.services.fleet import get_or_create_node
from mqtt_contract import PlaybackEvent, PlaybackReport

STATUS_BY_EVENT = {
    PlaybackEvent.started: "started",
    PlaybackEvent.finished: "finished",
    PlaybackEvent.failed: "failed",
    PlaybackEvent.preempted: "preempted",
    PlaybackEvent.stopped: "stopped",
    PlaybackEvent.skipped: "skipped",
}
FINAL = {"finished", "failed", "preempted", "stopped", "skipped"}
PLAYED = {PlaybackEvent.started, PlaybackEvent.finished, PlaybackEvent.preempted,
          PlaybackEvent.stopped}


def record_report(session: Session, commune: str, report: PlaybackReport) -> bool:
    """Store a report once; update its delivery. False when it was a duplicate."""
    if session.scalar(select(PlaybackLog.id).where(PlaybackLog.report_id == report.id)):
        return False
    try:
        with session.begin_nested():
            session.add(PlaybackLog(
                report_id=report.id, commune=commune, node_id=report.node,
                item_id=report.item_id, event=report.event.value, planned_at=report.planned_at,
                actual_at=report.actual_at, duration_s=report.duration_s, detail=report.detail,
                clock_offset_ms=report.clock_offset_ms))
    except IntegrityError:
        return False  # another replica stored it first
    node = get_or_create_node(session, commune, report.node)
    delivery = find_delivery(session, node, report.item_id)
    if delivery is not None:
        apply_to_delivery(delivery, report)
    return True


def find_delivery(session: Session, node: Node, item_id: str) -> Delivery | None:
    if not (item_id.startswith("a") and item_id[1:].isdigit()):
        return None
    return session.scalar(select(Delivery).where(
        Delivery.node_pk == node.id, Delivery.announcement_id == int(item_id[1:])))


def apply_to_delivery(delivery: Delivery, report: PlaybackReport) -> None:
    status = STATUS_BY_EVENT[report.event]
    if delivery.status in FINAL and status == "started":
        return  # reports may arrive out of order: never step back from a final state
    delivery.status, delivery.detail = status, report.detail
    if report.event in PLAYED and delivery.actual_start is None:
        delivery.actual_start = report.actual_at
    if status in FINAL and report.duration_s is not None:
        delivery.duration_s = report.duration_s
        delivery.finished_at = report.actual_at + timedelta(seconds=report.duration_s)


def mark_delivered(session: Session, node: Node) -> None:
    """A node's telemetry says which plan it holds: its planned items are delivered."""
    if node.plan_version_acked is None:
        return
    for d in session.scalars(select(Delivery).where(
            Delivery.node_pk == node.id, Delivery.status == "planned",
            Delivery.plan_version <= node.plan_version_acked)):
        d.status = "delivered"
