"""How far the node can trust its own clock (principle 6: synchronised start).

Reads chrony first (``chronyc -c tracking``: field 5 is the offset in seconds), then
systemd-timesyncd (``timedatectl show``). Without either, the state is "unknown" and
the controller shows the node's clock as untrusted.
"""

from __future__ import annotations

import shutil
import subprocess

from mqtt_contract import ClockState

TRUSTED_OFFSET_MS = 20.0


def _run(cmd: list[str]) -> str | None:
    if not shutil.which(cmd[0]):
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=2)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def read_clock_state() -> ClockState:
    if out := _run(["chronyc", "-c", "tracking"]):
        fields = out.strip().split(",")
        try:
            offset_ms = float(fields[4]) * 1000.0
            leap_ok = fields[-1].strip().lower() == "normal"
            return ClockState(synced=leap_ok and abs(offset_ms) <= TRUSTED_OFFSET_MS,
                              offset_ms=round(offset_ms, 3), source="chrony")
        except (IndexError, ValueError):
            pass
    if out := _run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"]):
        return ClockState(synced=out.strip() == "yes", source="timesyncd")
    return ClockState(synced=False, source="unknown")
