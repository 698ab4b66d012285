"""The fleet: nodes known from their config files and from what they say over MQTT."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.models import Node
from controller.services import communes
from firmware_config.schema import ConfigError, load_node_config
from mqtt_contract import Status, Telemetry

log = logging.getLogger(__name__)


def get_or_create_node(session: Session, commune: str, node_id: str) -> Node:
    """A node by its commune and id; a new one (a node provisioned since the controller
    last read the fleet) is registered, and so is its commune."""
    node = session.scalar(select(Node).where(Node.commune == commune, Node.node_id == node_id))
    if node is None:
        communes.ensure_commune(session, commune)
        node = Node(commune=commune, node_id=node_id, zones=[], online=False, plan_version=0)
        session.add(node)
        session.flush()
    return node


def register_fleet(session: Session, fleet_dir: Path) -> int:
    """Register (or update) every node config found under ``fleet_dir``."""
    count = 0
    for path in sorted(fleet_dir.rglob("*.yaml")):
        try:
            cfg = load_node_config(path)
        except ConfigError as exc:
            log.warning("skipping %s", exc)
            continue
        node = get_or_create_node(session, cfg.commune, cfg.node_id)
        node.name, node.zones = cfg.name or cfg.node_id, list(cfg.zones)
        node.camera_names = {c.id: c.name for c in cfg.cameras if c.name} or None
        if cfg.location:
            node.lat, node.lon = cfg.location.lat, cfg.location.lon
        count += 1
    return count


def apply_status(session: Session, commune: str, status: Status,
                 node: Node | None = None) -> Node:
    """The broker orders one topic's messages, so the newest status is the last one here.
    ``node``: the node's row, when the caller loaded it already (a batch).

    (The will's ``at`` is when the node connected, not when it dropped: not comparable.)
    """
    node = node or get_or_create_node(session, commune, status.node)
    node.online, node.status_at = status.online, status.at
    if status.online:
        node.last_seen = datetime.now(UTC)
        node.agent_version = status.version
        if status.zones and not node.zones:
            node.zones = list(status.zones)
    return node


def telemetry_values(telemetry: Telemetry) -> dict[str, Any]:
    """What a heartbeat sets on its node's row: the one owner of that, for the single
    write (:func:`apply_telemetry`) and the batch one (``services/ingest.py``)."""
    return {"telemetry": telemetry.model_dump(mode="json"), "last_seen": datetime.now(UTC),
            "plan_version_acked": telemetry.plan_version}


def apply_telemetry(session: Session, commune: str, telemetry: Telemetry,
                    node: Node | None = None) -> Node:
    node = node or get_or_create_node(session, commune, telemetry.node)
    for column, value in telemetry_values(telemetry).items():
        setattr(node, column, value)
    return node


def list_nodes(session: Session) -> list[Node]:
    return list(session.scalars(select(Node).order_by(Node.commune, Node.node_id)))
