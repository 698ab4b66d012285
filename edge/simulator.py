"""Many simulated nodes in one process: real agents, real MQTT, WAV file sinks.

Each simulated node is a full :class:`EdgeAgent` with its own broker account, store and
sink folder; only the sound card (a file sink) and the amplifier (no-op) are simulated.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from edge.agent import EdgeAgent
from firmware_config.schema import load_node_config

log = logging.getLogger(__name__)


def find_node_configs(fleet_dir: Path) -> list[Path]:
    return sorted(fleet_dir.glob("nodes/*/node.yaml"))


def run_simulation(configs: list[Path], stop: threading.Event) -> list[EdgeAgent]:
    """Start one agent per config and keep them running until ``stop`` is set."""
    agents = [EdgeAgent(load_node_config(c)) for c in configs]
    for agent in agents:
        agent.start()
    log.info("%d simulated nodes running", len(agents))
    try:
        stop.wait()
    finally:
        for agent in agents:
            agent.stop()
    return agents
