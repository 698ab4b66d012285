"""Which nodes a schedule reaches: all, zones, groups, or named nodes."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.models import Node, NodeGroup


def group_members(session: Session) -> dict[str, set[str]]:
    return {g.name: set(g.node_ids) for g in session.scalars(select(NodeGroup))}


def matches(targets: dict, node: Node, groups: dict[str, set[str]]) -> bool:
    if targets.get("all"):
        return True
    if node.node_id in targets.get("nodes", ()):
        return True
    if set(targets.get("zones", ())) & set(node.zones or ()):
        return True
    return any(node.node_id in groups.get(g, ()) for g in targets.get("groups", ()))


def resolve(session: Session, targets: dict, nodes: Iterable[Node] | None = None) -> list[Node]:
    groups = group_members(session)
    nodes = nodes if nodes is not None else session.scalars(select(Node))
    return [n for n in nodes if matches(targets, n, groups)]


def unknown_targets(session: Session, targets: dict) -> list[str]:
    """Names in ``targets`` that match nothing known (a typo should be a 4xx, not silence)."""
    nodes = list(session.scalars(select(Node)))
    known_nodes = {n.node_id for n in nodes}
    known_zones = {z for n in nodes for z in (n.zones or ())}
    known_groups = set(group_members(session))
    return ([f"node {n}" for n in targets.get("nodes", ()) if n not in known_nodes]
            + [f"zone {z}" for z in targets.get("zones", ()) if z not in known_zones]
            + [f"group {g}" for g in targets.get("groups", ()) if g not in known_groups])
