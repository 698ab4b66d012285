"""The station at a glance: plays and minutes aired per day, nodes online over time,
camera alerts per day by kind, and which nodes have been offline too long.

Per local day (the commune's wall clock), over a bounded window (30 days by default), so
the dashboard's queries stay small however long the station has run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from controller import localtime
from controller.models import CameraAlertRecord, Node, OnlineSample, PlaybackLog
from controller.services.reports import COUNTED

WINDOW_DAYS = 30


@dataclass(frozen=True)
class DayAiring:
    day: date
    plays: int
    minutes: float


def days_ending(last: date, count: int = WINDOW_DAYS) -> list[date]:
    return [last - timedelta(days=count - 1 - i) for i in range(count)]


def _window(days: list[date]) -> tuple[datetime, datetime]:
    return localtime.day_bounds(days[0])[0], localtime.day_bounds(days[-1])[1]


def _hour(session: Session, column: Any) -> Any:
    """The UTC hour of a time column, grouped in the database: SQLite keeps times as
    ``YYYY-MM-DD HH:MM:SS`` text (UTC), PostgreSQL truncates its own. Hours map to local
    days exactly wherever the zone's offset is whole hours (Vietnam: +7)."""
    if session.get_bind().dialect.name == "sqlite":
        return func.substr(column, 1, 13)
    return func.date_trunc("hour", column)


def _day_of(bucket: str | datetime) -> date:
    at = (datetime.strptime(bucket, "%Y-%m-%d %H").replace(tzinfo=UTC)
          if isinstance(bucket, str) else bucket.astimezone(UTC))
    moment = localtime.local(at)
    assert moment is not None
    return moment.date()


def airing_per_day(session: Session, days: list[date]) -> list[DayAiring]:
    """Plays (a node playing an item to its end, or cut short) and the minutes they
    really played, per local day. Summed per hour in the database (at most 720 rows come
    back for 30 days, however many plays there were)."""
    start, end = _window(days)
    hour = _hour(session, PlaybackLog.actual_at)
    plays: dict[date, int] = dict.fromkeys(days, 0)
    seconds: dict[date, float] = dict.fromkeys(days, 0.0)
    for bucket, count, total in session.execute(
            select(hour, func.count(), func.sum(PlaybackLog.duration_s))
            .where(PlaybackLog.actual_at >= start, PlaybackLog.actual_at < end,
                   PlaybackLog.event.in_(COUNTED)).group_by(hour)):
        day = _day_of(bucket)
        if day in plays:
            plays[day] += count
            seconds[day] += total or 0.0
    return [DayAiring(d, plays[d], round(seconds[d] / 60, 1)) for d in days]


def alerts_per_day(session: Session, days: list[date]) -> dict[str, list[int]]:
    """kind → alerts per local day (the days' order), kinds that occurred only."""
    start, end = _window(days)
    index = {d: i for i, d in enumerate(days)}
    hour = _hour(session, CameraAlertRecord.at)
    out: dict[str, list[int]] = {}
    for kind, bucket, count in session.execute(
            select(CameraAlertRecord.kind, hour, func.count())
            .where(CameraAlertRecord.at >= start, CameraAlertRecord.at < end)
            .group_by(CameraAlertRecord.kind, hour)):
        i = index.get(_day_of(bucket))
        if i is not None:
            out.setdefault(kind, [0] * len(days))[i] += count
    return dict(sorted(out.items()))


def online_over_time(session: Session, since: datetime) -> list[OnlineSample]:
    return list(session.scalars(select(OnlineSample).where(OnlineSample.at >= since)
                                .order_by(OnlineSample.at)))


def record_online(session: Session, keep_days: int, now: datetime | None = None) -> OnlineSample:
    """Write how many nodes are online now; forget samples older than ``keep_days``."""
    now = now or datetime.now(UTC)
    online = session.scalar(select(func.count(Node.id)).where(Node.online.is_(True))) or 0
    total = session.scalar(select(func.count(Node.id))) or 0
    sample = OnlineSample(at=now, online=online, total=total)
    session.add(sample)
    session.execute(delete(OnlineSample).where(OnlineSample.at < now - timedelta(days=keep_days)))
    return sample


def offline_for(node: Node, now: datetime) -> timedelta | None:
    """How long ``node`` has been offline (since its last word); None when online or
    never seen (registered, not installed yet: nothing was lost)."""
    if node.online or node.last_seen is None:
        return None
    return now - node.last_seen


def long_offline(nodes: list[Node], minutes: float,
                 now: datetime | None = None) -> dict[str, timedelta]:
    """node id → how long, for the nodes offline longer than ``minutes``."""
    now = now or datetime.now(UTC)
    limit = timedelta(minutes=minutes)
    return {n.node_id: gone for n in nodes
            if (gone := offline_for(n, now)) is not None and gone > limit}
