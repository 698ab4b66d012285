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
                           lambda group, node_id: node_id in groups.get(group, ()))


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
    rows = session.execute(select(Node.node_id, Node.commune, Node.zones))
    return [Address(node_id, commune, tuple(zones or ())) for node_id, commune, zones in rows
            if targets.matches(node_id, zones or (),
                               lambda group, n: n in groups.get(group, ()))]


def unknown_targets(session: Session, targets: Targets) -> list[str]:
    """Names in ``targets`` that match nothing known (a typo should be a 4xx, not silence)."""
    nodes = list(session.scalars(select(Node)))
    known_nodes = {n.node_id for n in nodes}
    known_zones = {z for n in nodes for z in (n.zones or ())}
    known_groups = set(group_members(session))
    return ([f"node {n}" for n in targets.nodes if n not in known_nodes]
            + [f"zone {z}" for z in targets.zones if z not in known_zones]
            + [f"group {g}" for g in targets.groups if g not in known_groups])
