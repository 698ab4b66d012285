"""Playback reports from nodes: the broadcast log (nhật ký phát).

Reports arrive at least once (the node's outbox resends until acknowledged), so each is
stored once by its id and a replay changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controller.models import PlaybackLog
from mqtt_contract import PlaybackReport


def record_report(session: Session, commune: str, report: PlaybackReport) -> bool:
    """Store a report once. False when it was a duplicate."""
    if session.scalar(select(PlaybackLog.id).where(PlaybackLog.report_id == report.id)):
        return False
    try:
        with session.begin_nested():
            session.add(log_row(commune, report))
    except IntegrityError:
        return False  # another replica stored it first
    return True


def log_row(commune: str, report: PlaybackReport) -> PlaybackLog:
    return PlaybackLog(
        report_id=report.id, commune=commune, node_id=report.node, item_id=report.item_id,
        event=report.event.value, planned_at=report.planned_at, actual_at=report.actual_at,
        duration_s=report.duration_s, detail=report.detail,
        clock_offset_ms=report.clock_offset_ms)


def log_entries(session: Session, *, since: datetime | None = None,
                until: datetime | None = None, node: str | None = None,
                item: str | None = None, limit: int = 1000) -> list[PlaybackLog]:
    q = select(PlaybackLog).order_by(PlaybackLog.actual_at.desc(), PlaybackLog.id.desc())
    if since is not None:
        q = q.where(PlaybackLog.actual_at >= since)
    if until is not None:
        q = q.where(PlaybackLog.actual_at < until)
    if node is not None:
        q = q.where(PlaybackLog.node_id == node)
    if item is not None:
        q = q.where(PlaybackLog.item_id == item)
    return list(session.scalars(q.limit(limit)))
