"""Plan compiler: each node's desired schedule for the horizon, versioned.

A plan is the whole truth for a node (principle 1): every item it should play between
now and the horizon, after holidays, quiet hours and priorities have been applied.
Publishing it retained means a node that reconnects gets it at once; the version (never
decreasing, even across controller restarts: at least the compile time in ms) lets a node
ignore a stale copy. Schedules are expanded once per compile and shared by all nodes, so
compiling a thousand nodes costs little more than compiling one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from controller.domain import PLAYABLE, ScheduleStatus
from controller.models import Announcement, CalendarException, Node, Schedule, Zone
from controller.services import targets as target_rules
from controller.services.item_ids import item_id
from controller.services.timing import Timing, occurrences
from mqtt_contract import (
    DEFAULT_QUIET_HOURS,
    PRIORITY_RANK,
    MediaRef,
    Plan,
    PlanItem,
    Priority,
    QuietWindow,
)

PAST_GRACE = timedelta(minutes=5)
"""Items that started this recently stay in the plan (a node that is just back plays them
late rather than never, within its own grace)."""


def next_version(node: Node) -> int:
    return max(node.plan_version + 1, int(time.time() * 1000))


def timing_of(s: Schedule) -> Timing:
    return Timing(s.kind, s.start_at, s.rule, s.until, s.timezone)


def media_ref(a: Announcement) -> MediaRef:
    assert a.media_sha256 and a.media_size and a.duration_s
    return MediaRef(sha256=a.media_sha256, size=a.media_size, codec=a.media_codec or "mp3",
                    duration_s=a.duration_s)


@dataclass
class Occurrence:
    schedule: Schedule
    at: datetime
    media: MediaRef
    local: datetime = field(init=False)
    """``at`` on the schedule's own wall clock (holidays and quiet hours are local)."""

    def __post_init__(self) -> None:
        self.local = self.at.astimezone(ZoneInfo(self.schedule.timezone))

    @property
    def rank(self) -> int:
        return PRIORITY_RANK[Priority(self.schedule.priority)]

    @property
    def length_s(self) -> float:
        return self.media.duration_s * self.schedule.repeat


@dataclass
class CompileContext:
    """Everything a compile needs, loaded once for all nodes.

    Nodes that match the same schedules and share a commune and quiet window get the same
    items, so the sequenced items are memoised by that key: a thousand nodes over a few
    dozen zones cost a few dozen sequencings, not a thousand (benchmarks/compile.py).
    """

    now: datetime
    horizon: timedelta
    occurrences: list[Occurrence] = field(default_factory=list)
    holidays: dict[str | None, set[date]] = field(default_factory=dict)
    quiet: dict[tuple[str, str], QuietWindow] = field(default_factory=dict)
    groups: dict[str, set[str]] = field(default_factory=dict)
    _by_schedule: dict[int, list[Occurrence]] | None = field(default=None, repr=False)
    _items: dict[tuple, list[PlanItem]] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, session: Session, horizon: timedelta, now: datetime | None = None
             ) -> CompileContext:
        now = now or datetime.now(UTC)
        ctx = cls(now=now, horizon=horizon)
        schedules = session.scalars(
            select(Schedule).join(Announcement)
            .where(Schedule.status == ScheduleStatus.active, Announcement.status.in_(PLAYABLE),
                   Announcement.media_sha256.is_not(None))
            .options(selectinload(Schedule.announcement)))
        for s in schedules:
            ref = media_ref(s.announcement)
            for at in occurrences(timing_of(s), now - PAST_GRACE, now + horizon):
                ctx.occurrences.append(Occurrence(s, at, ref))
        for ex in session.scalars(select(CalendarException).where(
                CalendarException.day >= (now - timedelta(days=1)).date())):
            ctx.holidays.setdefault(ex.commune, set()).add(ex.day)
        for z in session.scalars(select(Zone)):
            ctx.quiet[(z.commune, z.code)] = QuietWindow(start=z.quiet_start, end=z.quiet_end)
        ctx.groups = target_rules.group_members(session)
        return ctx

    def quiet_window(self, node: Node) -> QuietWindow:
        zones = node.zones or []
        if not zones:
            return DEFAULT_QUIET_HOURS
        return self.quiet.get((node.commune, zones[0]), DEFAULT_QUIET_HOURS)

    def is_holiday(self, node: Node, occ: Occurrence) -> bool:
        day = occ.local.date()
        return day in self.holidays.get(None, ()) or day in self.holidays.get(node.commune, ())

    def by_schedule(self) -> dict[int, list[Occurrence]]:
        """Occurrences grouped by schedule, in load order (built once, on first use)."""
        if self._by_schedule is None:
            self._by_schedule = {}
            for occ in self.occurrences:
                self._by_schedule.setdefault(id(occ.schedule), []).append(occ)
        return self._by_schedule


def node_occurrences(ctx: CompileContext, node: Node) -> list[Occurrence]:
    """What ``node`` should play: targeted, not on a holiday, not in its quiet hours."""
    quiet = ctx.quiet_window(node)
    kept = []
    for occs in ctx.by_schedule().values():
        s = occs[0].schedule
        if not target_rules.matches(s.targets, node, ctx.groups):
            continue  # targets are per schedule: one check covers all its occurrences
        emergency = s.priority == Priority.emergency
        ordinary = s.priority == Priority.ordinary
        for occ in occs:
            if not emergency and ctx.is_holiday(node, occ):
                continue
            if ordinary and quiet.contains(occ.local.time()):
                continue
            kept.append(occ)
    return kept


def sequence(occs: list[Occurrence]) -> list[tuple[Occurrence, datetime]]:
    """Order clashing items: higher priority first, then staff's sequence; later ones are
    moved to start when the earlier ends (an emergency keeps its time: it preempts)."""
    ordered = sorted(occs, key=lambda o: (o.at, -o.rank, o.schedule.sequence or 0,
                                          o.schedule.id))
    result: list[tuple[Occurrence, datetime]] = []
    busy_until: datetime | None = None
    for occ in ordered:
        start = occ.at
        if occ.schedule.priority != Priority.emergency:
            if busy_until and start < busy_until:
                start = busy_until
            busy_until = start + timedelta(seconds=occ.length_s)
        result.append((occ, start))
    return result


def plan_items(ctx: CompileContext, node: Node) -> list[PlanItem]:
    """``node``'s sequenced items, shared with every node that gets the same ones.

    The key is what the items depend on: which schedules target the node, its commune
    (holidays) and its quiet window. PlanItems are immutable once built, so sharing them
    between plans is safe.
    """
    matched = tuple(sid for sid, occs in ctx.by_schedule().items()
                    if target_rules.matches(occs[0].schedule.targets, node, ctx.groups))
    quiet = ctx.quiet_window(node)
    key = (matched, node.commune, quiet.start, quiet.end)
    items = ctx._items.get(key)
    if items is None:
        items = [
            PlanItem(id=item_id(o.schedule.id, o.at), title=o.schedule.announcement.title
                     or o.schedule.announcement.text[:60], media=o.media, start_at=start,
                     priority=Priority(o.schedule.priority), volume=o.schedule.volume,
                     repeat=o.schedule.repeat,
                     ignore_quiet_hours=o.schedule.priority == Priority.emergency)
            for o, start in sequence(node_occurrences(ctx, node))
        ]
        ctx._items[key] = items
    return items


def build_plan(ctx: CompileContext, node: Node, version: int) -> Plan:
    return Plan(node=node.node_id, version=version, generated_at=ctx.now,
                horizon_until=ctx.now + ctx.horizon, items=list(plan_items(ctx, node)),
                quiet_hours=ctx.quiet_window(node))


def compile_plan(session: Session, node: Node, ctx: CompileContext) -> Plan:
    """Build ``node``'s plan and record its new version."""
    node.plan_version = next_version(node)
    return build_plan(ctx, node, node.plan_version)
