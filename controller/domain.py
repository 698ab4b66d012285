"""The controller's domain values: the statuses of what staff make, and whom it reaches.

Wire vocabularies (priorities, command kinds, playback events) belong to the nodes as much
as to the controller and live in ``mqtt_contract``; the ones here exist only on this side.
They are ``StrEnum``s, so the database keeps the same strings it always held and a page or
an API answer shows the same words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


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


class Targets(BaseModel):
    """Whom an announcement, an emergency or a command reaches: every node, or the union
    of some zones, groups and named nodes. The API accepts it, a schedule stores it, the
    plan compiler and the command sender match nodes with it: one value all the way."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    all: bool = False
    zones: list[str] = Field(default_factory=list, max_length=500)
    groups: list[str] = Field(default_factory=list, max_length=100)
    nodes: list[str] = Field(default_factory=list, max_length=10_000)

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
                in_group: Callable[[str, str], bool]) -> bool:
        """Does it reach this node? ``in_group(group, node_id)`` answers group membership."""
        if self.all or node_id in self.nodes:
            return True
        if set(self.zones) & set(node_zones):
            return True
        return any(in_group(g, node_id) for g in self.groups)

    def stored(self) -> dict:
        """The JSON kept in the database (only what is set, as it always was)."""
        return self.model_dump(exclude_defaults=True)
