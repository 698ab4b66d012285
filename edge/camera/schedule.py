"""Quiet hours and the spoken-reminder gate of one camera."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from firmware_config.camera import CameraConfig


def in_quiet_hours(config: CameraConfig, at: datetime) -> bool:
    """Is the aware instant ``at`` inside one of the camera's quiet windows (local time)?"""
    local = at.astimezone(config.tz).time()
    return any(window.contains(local) for window in config.quiet_hours)


class ReminderGate:
    """Decides whether to ask the agent for a spoken reminder.

    The camera enforces its own quiet hours and reminder cooldown; the agent (through
    ``request_reminder``) still has the last word (node-wide quiet hours, playback priority).
    The cooldown starts only when the agent accepted, so a reminder refused because a
    broadcast was playing can be retried on the next violation.
    """

    def __init__(self, config: CameraConfig, request: Callable[[str, str], bool]) -> None:
        self.config = config
        self._request = request
        self._last: dict[str, float] = {}

    def maybe_remind(self, kind: str, t: float, at: datetime) -> bool:
        """Ask for the reminder of ``kind`` if allowed; returns True when one was accepted."""
        if kind not in self.config.reminders or in_quiet_hours(self.config, at):
            return False
        last = self._last.get(kind)
        if last is not None and t - last < self.config.cooldowns.reminder_s:
            return False
        if not self._request(self.config.id, kind):
            return False
        self._last[kind] = t
        return True
