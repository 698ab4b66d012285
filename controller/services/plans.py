"""Plan compiler: each node's desired schedule for the horizon, versioned.

A plan is the whole truth for a node (principle 1): every item it should play between
now and the horizon. Publishing it retained means a node that reconnects gets it at
once; the version (never decreasing, even across controller restarts: it is at least
the compile time in milliseconds) lets a node ignore a stale copy.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.models import Announcement, Delivery, Node
from mqtt_contract import MediaRef, Plan, PlanItem, Priority

OPEN_STATES = ("planned", "delivered", "started")
PAST_GRACE = timedelta(minutes=5)


def next_version(node: Node) -> int:
    return max(node.plan_version + 1, int(time.time() * 1000))


def media_ref(a: Announcement) -> MediaRef:
    assert a.media_sha256 and a.media_size and a.duration_s
    return MediaRef(sha256=a.media_sha256, size=a.media_size, codec=a.media_codec or "mp3",
                    duration_s=a.duration_s)


def plan_item(a: Announcement) -> PlanItem:
    return PlanItem(id=a.item_id, title=a.title or a.text[:60], media=media_ref(a),
                    start_at=a.start_at, priority=Priority(a.priority),
                    ignore_quiet_hours=a.priority == Priority.emergency)


def compile_plan(session: Session, node: Node, horizon: timedelta,
                 now: datetime | None = None) -> Plan:
    """Build (and version) ``node``'s plan; deliveries in it record that version."""
    now = now or datetime.now(UTC)
    rows = session.execute(
        select(Delivery, Announcement)
        .join(Announcement, Delivery.announcement_id == Announcement.id)
        .where(Delivery.node_pk == node.id, Delivery.status.in_(OPEN_STATES),
               Announcement.status == "scheduled",
               Announcement.start_at >= now - PAST_GRACE,
               Announcement.start_at <= now + horizon)
        .order_by(Announcement.start_at)
    ).all()
    node.plan_version = next_version(node)
    for delivery, _ in rows:
        delivery.plan_version = node.plan_version
    return Plan(node=node.node_id, version=node.plan_version, generated_at=now,
                horizon_until=now + horizon, items=[plan_item(a) for _, a in rows])
