"""Telemetry: the heartbeat an operator reads, and how far the node's clock can be trusted."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from edge.clock import read_clock_state
from mqtt_contract import ClockState, Refusal, Telemetry

CLOCK_STATE_TTL_S = 10.0
"""How long a reading of the clock's sync state is reused. Reading it runs chronyc or
timedatectl (a process each time); the offset moves by microseconds per second, and a
burst of reports (an emergency start, a finished clip) should not spawn one each."""


class ClockSource:
    """The clock's sync state, read at most once per :data:`CLOCK_STATE_TTL_S`.

    One per machine: a Pi's agent has its own; the simulator hands one to all its nodes,
    which share this machine's clock."""

    def __init__(self, read: Callable[[], ClockState] = read_clock_state) -> None:
        self._read = read
        self._last: tuple[float, ClockState] | None = None

    def state(self) -> ClockState:
        now = time.monotonic()
        if self._last is None or now - self._last[0] >= CLOCK_STATE_TTL_S:
            self._last = (now, self._read())
        return self._last[1]


def cpu_temperature() -> float | None:
    path = Path("/sys/class/thermal/thermal_zone0/temp")
    try:
        return round(int(path.read_text()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def build_telemetry(node: str, started_at: float, storage: Path, volume: int,
                    now_playing: str | None, plan_version: int | None, clock: ClockState,
                    cache_items: int, outbox_pending: int, cameras: list[dict],
                    refused: dict[Refusal, int] | None = None) -> Telemetry:
    """The heartbeat; ``refused`` counts the plans and commands the gate turned away."""
    return Telemetry(
        node=node, uptime_s=round(time.monotonic() - started_at, 1),
        disk_free_mb=round(shutil.disk_usage(storage).free / 2**20, 1),
        temperature_c=cpu_temperature(), volume=volume, now_playing=now_playing,
        plan_version=plan_version, clock=clock, cache_items=cache_items,
        outbox_pending=outbox_pending, cameras=cameras, refused=refused or {})
