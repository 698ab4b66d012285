"""The controller's domain values: the statuses of what staff make, and whom it reaches.

Wire vocabularies (priorities, command kinds, playback events) belong to the nodes as much
as to the controller and live in ``mqtt_contract``; the ones here exist only on this side.
They are ``StrEnum``s, so the database keeps the same strings it always held and a page or
an API answer shows the same words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

DAY_MIN, DAY_MAX = date(1970, 1, 1), date(2999, 12, 31)
"""Local days the controller accepts: a day's bounds in any time zone stay inside
``datetime``'s range (0001-01-01 in UTC+7 starts in year 0: an ``OverflowError``)."""


def _check_day(value: date) -> date:
    if not DAY_MIN <= value <= DAY_MAX:
        raise ValueError(f"a day between {DAY_MIN} and {DAY_MAX}")
    return value


def _check_instant(value: datetime) -> datetime:
    if not DAY_MIN <= value.astimezone(UTC).date() <= DAY_MAX:
        raise ValueError(f"a time between {DAY_MIN} and {DAY_MAX}")
    return value


Day = Annotated[date, AfterValidator(_check_day)]
"""A local day in a query or body: ``day: Day | None = None``."""
Instant = Annotated[AwareDatetime, AfterValidator(_check_instant)]
"""A moment with its time zone (a naive time is ambiguous: 422), within :data:`Day`'s
years."""


class AnnouncementStatus(StrEnum):
    """draft → submitted → approved (a leader) → scheduled (an active schedule exists);
    cancelled at any point, for good."""

    draft = "draft"
    submitted = "submitted"
    approved = "approved"
    scheduled = "scheduled"
    cancelled = "cancelled"


PLAYABLE = (AnnouncementStatus.approved, AnnouncementStatus.scheduled)
"""Announcements whose active schedules are on the nodes' plans."""


class ApprovalAction(StrEnum):
    submit = "submit"
    approve = "approve"
    reject = "reject"


class ScheduleStatus(StrEnum):
    active = "active"
    cancelled = "cancelled"


class TimingKind(StrEnum):
    once = "once"
    rrule = "rrule"
    cron = "cron"


class DeliveryStatus(StrEnum):
    """Before a node reports (its playback reports then take over: ``PlaybackEvent``)."""

    planned = "planned"
    """On the plan published for the node; the node has not confirmed that plan yet."""
    delivered = "delivered"
    """The node holds the plan that carries the item."""
    cancelled = "cancelled"


class AlertState(StrEnum):
    new = "new"
    acknowledged = "acknowledged"
    resolved = "resolved"
    false_alarm = "false_alarm"


class AlertAction(StrEnum):
    acknowledge = "acknowledge"
    resolve = "resolve"
    false_alarm = "false_alarm"


class DomainError(ValueError):
    """A change refused by a rule: ``str()`` says why for the log and for programs, and
    ``message`` says it to people, in Vietnamese (the API puts it in ``message``)."""

    code = "refused"

    def __init__(self, detail: str, message: str) -> None:
        super().__init__(detail)
        self.message = message


class Targets(BaseModel):
    """Whom an announcement, an emergency or a command reaches: every node, or the union
    of some zones, groups and named nodes. The API accepts it, a schedule stores it, the
    plan compiler and the command sender match nodes with it: one value all the way."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    all: bool = False
    zones: list[str] = Field(default_factory=list, max_length=500)
    groups: list[str] = Field(default_factory=list, max_length=100)
    nodes: list[str] = Field(default_factory=list, max_length=10_000)
    communes: list[str] = Field(default_factory=list, max_length=1000)
    """Within these communes only (zone codes and node ids are a commune's own: thôn 1
    exists in every commune); empty: wherever the rest matches. ``all`` with communes is
    every node of those communes (a province bulletin)."""

    @classmethod
    def everyone(cls) -> Targets:
        return cls(all=True)

    @classmethod
    def of(cls, *, nodes: Iterable[str] = (), zones: Iterable[str] = ()) -> Targets:
        return cls(nodes=list(nodes), zones=list(zones))

    @property
    def names_anything(self) -> bool:
        return self.all or bool(self.zones or self.groups or self.nodes)

    @property
    def zones_only(self) -> bool:
        """Only zones are named: audio can go once per zone instead of commune-wide."""
        return not (self.all or self.groups or self.nodes)

    def matches(self, node_id: str, node_zones: Iterable[str],
                in_group: Callable[[str, str], bool], commune: str) -> bool:
        """Does it reach this node of ``commune``? ``in_group(group, node_id)`` answers
        group membership."""
        if self.communes and commune not in self.communes:
            return False
        if self.all or node_id in self.nodes:
            return True
        if set(self.zones) & set(node_zones):
            return True
        return any(in_group(g, node_id) for g in self.groups)

    def stored(self) -> dict:
        """The JSON kept in the database (only what is set, as it always was)."""
        return self.model_dump(exclude_defaults=True)
