"""Which nodes a :class:`~controller.domain.Targets` reaches, read from the database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.domain import Targets
from controller.models import Node, NodeGroup


def group_members(session: Session) -> dict[str, set[str]]:
    return {g.name: set(g.node_ids) for g in session.scalars(select(NodeGroup))}


def matches(targets: Targets, node: Node, groups: dict[str, set[str]]) -> bool:
    return targets.matches(node.node_id, node.zones or (),
                           lambda group, node_id: node_id in groups.get(group, ()),
                           node.commune)


@dataclass(frozen=True)
class Address:
    """Where a node is reached on the wire: its commune and zones (its topics)."""

    node_id: str
    commune: str
    zones: tuple[str, ...]


def addresses(session: Session, targets: Targets) -> list[Address]:
    """The nodes ``targets`` reaches, as addresses: columns only, no ORM objects, because
    an emergency resolves its targets on the way to the speakers (10,000 nodes loaded as
    objects cost tens of milliseconds there)."""
    groups = group_members(session) if targets.groups else {}
    query = select(Node.node_id, Node.commune, Node.zones)
    if targets.communes:
        query = query.where(Node.commune.in_(targets.communes))
    return [Address(node_id, commune, tuple(zones or ()))
            for node_id, commune, zones in session.execute(query)
            if targets.matches(node_id, zones or (),
                               lambda group, n: n in groups.get(group, ()), commune)]


def unknown_targets(session: Session, targets: Targets) -> list[str]:
    """Names in ``targets`` that match nothing known (a typo should be a 4xx, not silence)."""
    nodes = list(session.scalars(select(Node)))
    known_nodes = {n.node_id for n in nodes}
    known_zones = {z for n in nodes for z in (n.zones or ())}
    known_groups = set(group_members(session))
    known_communes = {n.commune for n in nodes}
    return ([f"commune {c}" for c in targets.communes if c not in known_communes]
            + [f"node {n}" for n in targets.nodes if n not in known_nodes]
            + [f"zone {z}" for z in targets.zones if z not in known_zones]
            + [f"group {g}" for g in targets.groups if g not in known_groups])


class TargetIndex:
    """Which of many targets reach each node, for the plan compiler: the same answers as
    :func:`matches`, in one pass over the targets per kind of node instead of one check
    per node and target (20,000 nodes × 50 schedules is a million checks).

    Nodes of one commune with the same zones get the same answer unless a target names
    them (by id or through a group); that answer is computed once and kept.
    """

    def __init__(self, targets: list[Targets], groups: dict[str, set[str]]) -> None:
        self.targets = targets
        self._by_place: dict[tuple[str, tuple[str, ...]], tuple[int, ...]] = {}
        self._named: dict[str, set[int]] = {}
        for i, t in enumerate(targets):
            for node_id in {*t.nodes, *(m for g in t.groups for m in groups.get(g, ()))}:
                self._named.setdefault(node_id, set()).add(i)

    def reaching(self, node_id: str, commune: str, zones: tuple[str, ...]) -> tuple[int, ...]:
        """The positions (in the order given) of the targets that reach this node."""
        place = self._by_place.get((commune, zones))
        if place is None:
            place = tuple(i for i, t in enumerate(self.targets)
                          if (not t.communes or commune in t.communes)
                          and (t.all or not set(t.zones).isdisjoint(zones)))
            self._by_place[(commune, zones)] = place
        named = self._named.get(node_id)
        if not named:
            return place
        extra = {i for i in named
                 if not self.targets[i].communes or commune in self.targets[i].communes}
        return tuple(sorted(extra.union(place)))
