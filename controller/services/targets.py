"""Which nodes a :class:`~controller.domain.Targets` reaches, read from the database."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.domain import Targets
from controller.models import Node, NodeGroup


def group_members(session: Session) -> dict[str, set[str]]:
    return {g.name: set(g.node_ids) for g in session.scalars(select(NodeGroup))}


def matches(targets: Targets, node: Node, groups: dict[str, set[str]]) -> bool:
    return targets.matches(node.node_id, node.zones or (),
                           lambda group, node_id: node_id in groups.get(group, ()))


def resolve(session: Session, targets: Targets, nodes: Iterable[Node] | None = None
            ) -> list[Node]:
    groups = group_members(session)
    nodes = nodes if nodes is not None else session.scalars(select(Node))
    return [n for n in nodes if matches(targets, n, groups)]


def unknown_targets(session: Session, targets: Targets) -> list[str]:
    """Names in ``targets`` that match nothing known (a typo should be a 4xx, not silence)."""
    nodes = list(session.scalars(select(Node)))
    known_nodes = {n.node_id for n in nodes}
    known_zones = {z for n in nodes for z in (n.zones or ())}
    known_groups = set(group_members(session))
    return ([f"node {n}" for n in targets.nodes if n not in known_nodes]
            + [f"zone {z}" for z in targets.zones if z not in known_zones]
            + [f"group {g}" for g in targets.groups if g not in known_groups])
