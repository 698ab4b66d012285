"""Plan compiler: each node's desired schedule for the horizon, versioned.

A plan is the whole truth for a node (principle 1): every item it should play between
now and the horizon, after holidays, quiet hours and priorities have been applied.
Publishing it retained means a node that reconnects gets it at once; the version (never
decreasing, even across controller restarts: at least the compile time in ms) lets a node
ignore a stale copy. Schedules are expanded once per compile and shared by all nodes, so
compiling a thousand nodes costs little more than compiling one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter
from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from controller.domain import PLAYABLE, ScheduleStatus, Targets
from controller.models import Announcement, CalendarException, Node, Schedule, Zone
from controller.services import targets as target_rules
from controller.services.item_ids import item_id
from controller.services.timing import Timing, occurrences
from mqtt_contract import (
    DEFAULT_QUIET_HOURS,
    MAX_PLAN_ITEMS,
    PRIORITY_RANK,
    MediaRef,
    Plan,
    PlanItem,
    Priority,
    QuietWindow,
    canonical_json,
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
    _index: target_rules.TargetIndex | None = field(default=None, repr=False)
    _items: dict[tuple, PlanItems] = field(default_factory=dict, repr=False)

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
        ctx.holidays, ctx.quiet = load_calendar(session, now)
        ctx.groups = target_rules.group_members(session)
        return ctx

    def quiet_window(self, node: Compilable) -> QuietWindow:
        return quiet_window_in(self.quiet, node)

    def is_holiday(self, node: Compilable, occ: Occurrence) -> bool:
        return is_holiday_in(self.holidays, node, occ.local.date())

    def by_schedule(self) -> dict[int, list[Occurrence]]:
        """Occurrences grouped by schedule, in load order (built once, on first use)."""
        if self._by_schedule is None:
            self._by_schedule = {}
            for occ in self.occurrences:
                self._by_schedule.setdefault(id(occ.schedule), []).append(occ)
        return self._by_schedule

    def schedules_reaching(self, node: Compilable) -> tuple[int, ...]:
        """Positions in :meth:`by_schedule` of the schedules whose targets reach ``node``."""
        if self._index is None:
            self._index = target_rules.TargetIndex(
                [occs[0].schedule.targets for occs in self.by_schedule().values()],
                self.groups)
        return self._index.reaching(node.node_id, node.commune, tuple(node.zones or ()))


@dataclass(frozen=True)
class PlanItems:
    """One sequenced item list, shared by every plan that carries it, with its JSON made
    once: a plan's bytes and the bytes its signature covers are spliced from these
    (``Plan.to_bytes``, ``Signed.signed_bytes``) instead of serialising each item again
    for each of 20,000 plans."""

    items: list[PlanItem]
    wire: bytes
    canonical: bytes

    @classmethod
    def of(cls, items: list[PlanItem]) -> PlanItems:
        wire = _ITEM_LIST.dump_json(items, exclude_none=True)
        return cls(items, wire, canonical_json(json.loads(wire)))


_ITEM_LIST = TypeAdapter(list[PlanItem])


def node_occurrences(ctx: CompileContext, node: Compilable) -> list[Occurrence]:
    """What ``node`` should play: targeted, not on a holiday, not in its quiet hours."""
    quiet = ctx.quiet_window(node)
    kept = []
    groups = list(ctx.by_schedule().values())
    for position in ctx.schedules_reaching(node):  # one check per schedule, not occurrence
        occs = groups[position]
        priority = Priority(occs[0].schedule.priority)
        kept.extend(occ for occ in occs
                    if not held(priority, occ.local, quiet, ctx.is_holiday(node, occ)))
    return kept


Holidays = dict[str | None, set[date]]
"""Days nothing but an emergency plays, by commune (None: every commune's)."""
QuietWindows = dict[tuple[str, str], QuietWindow]
"""Each zone's quiet window, by (commune, zone code)."""


def load_calendar(session: Session, now: datetime) -> tuple[Holidays, QuietWindows]:
    """The holidays from yesterday on and every zone's quiet window: what :func:`held`
    needs, for the plan compiler and the relay runner alike."""
    holidays: Holidays = {}
    for ex in session.scalars(select(CalendarException).where(
            CalendarException.day >= (now - timedelta(days=1)).date())):
        holidays.setdefault(ex.commune, set()).add(ex.day)
    quiet = {(z.commune, z.code): QuietWindow(start=z.quiet_start, end=z.quiet_end)
             for z in session.scalars(select(Zone))}
    return holidays, quiet


def quiet_window_in(quiet: QuietWindows, node: Compilable) -> QuietWindow:
    """A node's quiet window is its first zone's (the default where it has none)."""
    zones = node.zones or []
    if not zones:
        return DEFAULT_QUIET_HOURS
    return quiet.get((node.commune, zones[0]), DEFAULT_QUIET_HOURS)


def is_holiday_in(holidays: Holidays, node: Compilable, day: date) -> bool:
    return day in holidays.get(None, ()) or day in holidays.get(node.commune, ())


def held(priority: Priority, local: datetime, quiet: QuietWindow, holiday: bool) -> bool:
    """The one rule of what waits for a node (Thông tư 39/2020): an emergency never; on
    a holiday everything else; in quiet hours (``local``: the start on the item's own wall
    clock) ordinary items. Scheduled items and relay slots both ask it."""
    if priority == Priority.emergency:
        return False
    return holiday or (priority == Priority.ordinary and quiet.contains(local.time()))


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


def plan_items(ctx: CompileContext, node: Compilable) -> PlanItems:
    """``node``'s sequenced items, shared with every node that gets the same ones.

    The key is what the items depend on: which schedules target the node, its commune's
    own holidays (communes without any share items) and its quiet window. PlanItems are
    immutable once built, so sharing them between plans is safe.
    """
    quiet = ctx.quiet_window(node)
    holidays = node.commune if node.commune in ctx.holidays else None
    key = (ctx.schedules_reaching(node), holidays, quiet.start, quiet.end)
    shared = ctx._items.get(key)
    if shared is None:
        shared = PlanItems.of([
            PlanItem(id=item_id(o.schedule.id, o.at), title=o.schedule.announcement.title
                     or o.schedule.announcement.text[:60], media=o.media, start_at=start,
                     priority=Priority(o.schedule.priority), volume=o.schedule.volume,
                     repeat=o.schedule.repeat,
                     ignore_quiet_hours=o.schedule.priority == Priority.emergency)
            for o, start in sequence(node_occurrences(ctx, node))
        ])
        ctx._items[key] = shared
    return shared


def build_plan(ctx: CompileContext, node: Compilable, version: int) -> Plan:
    """``node``'s plan. Built without validation (``model_construct``): every part was
    made by this module from validated models, and validating 87 shared items again for
    each of 20,000 plans was a fifth of a province's compile; the one bound a compiled
    plan could break is checked here."""
    shared = plan_items(ctx, node)
    if len(shared.items) > MAX_PLAN_ITEMS:
        raise ValueError(f"{node.node_id}: {len(shared.items)} plan items, more than "
                         f"a node takes ({MAX_PLAN_ITEMS})")
    plan = Plan.model_construct(node=node.node_id, version=version, generated_at=ctx.now,
                                horizon_until=ctx.now + ctx.horizon,
                                items=list(shared.items), quiet_hours=ctx.quiet_window(node))
    plan.share_item_json(shared.wire, shared.canonical)
    return plan


def compile_plan(session: Session, node: Node, ctx: CompileContext) -> Plan:
    """Build ``node``'s plan and record its new version."""
    node.plan_version = next_version(node)
    return build_plan(ctx, node, node.plan_version)


@dataclass(frozen=True)
class NodeRow:
    """What compiling needs of a node, read as columns: loading 20,000 nodes as ORM
    objects and flushing their versions one by one cost more than compiling them."""

    id: int
    node_id: str
    commune: str
    zones: tuple[str, ...]
    plan_version: int


def communes_of(targets: list[Targets] | None) -> set[str] | None:
    """The communes that ``targets`` can reach, when every one of them names its
    communes; None when any may reach any commune."""
    if targets is None or any(not t.communes for t in targets):
        return None
    return {c for t in targets for c in t.communes}


def compile_plans(session: Session, ctx: CompileContext,
                  targets: list[Targets] | None = None) -> list[tuple[str, Plan]]:
    """The new plans of the nodes that any of ``targets`` reaches (every node when None),
    their versions recorded, each with its node's commune. Only the communes the targets
    name are read: a change in one commune of a province recompiles that commune only."""
    query = select(Node.id, Node.node_id, Node.commune, Node.zones, Node.plan_version)
    if (communes := communes_of(targets)) is not None:
        query = query.where(Node.commune.in_(communes))
    nodes = [NodeRow(id_, node_id, commune, tuple(zones or ()), version)
             for id_, node_id, commune, zones, version in session.execute(query)]
    if targets is not None:
        nodes = [n for n in nodes if any(
            t.matches(n.node_id, n.zones, lambda g, m: m in ctx.groups.get(g, ()), n.commune)
            for t in targets)]
    now_ms = int(time.time() * 1000)
    versions = [max(n.plan_version + 1, now_ms) for n in nodes]
    if nodes:  # one executemany, not a flush of 20,000 objects
        session.execute(update(Node), [{"id": n.id, "plan_version": v}
                                       for n, v in zip(nodes, versions, strict=True)])
    return [(n.commune, build_plan(ctx, n, v))
            for n, v in zip(nodes, versions, strict=True)]


Compilable = Node | NodeRow
"""A node as the compiler reads it: an ORM object, or its columns."""
