"""Remember that an online engine just failed, so offline nodes stop asking Google.

Without this, every render on a node with no uplink would pay gTTS's timeout before falling
back. Failures are kept in memory for ``cooldown_s`` (a few minutes); after that the engine is
tried again, so a node whose 4G comes back gets the better voice without a restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_COOLDOWN_S = 300.0


@dataclass(frozen=True)
class Failure:
    reason: str
    at: float


class EngineHealth:
    """Per-engine "down until" memory; thread-safe (renders may run in worker threads)."""

    def __init__(
        self, cooldown_s: float = DEFAULT_COOLDOWN_S, clock: Callable[[], float] = time.monotonic
    ):
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._failures: dict[str, Failure] = {}
        self._lock = threading.Lock()

    def mark_failed(self, engine: str, reason: str) -> None:
        with self._lock:
            self._failures[engine] = Failure(reason, self._clock())

    def mark_ok(self, engine: str) -> None:
        with self._lock:
            self._failures.pop(engine, None)

    def down_reason(self, engine: str) -> str | None:
        """Why ``engine`` is skipped right now, or None if it may be tried."""
        with self._lock:
            failure = self._failures.get(engine)
            if failure is None:
                return None
            age = self._clock() - failure.at
            if age >= self.cooldown_s:
                del self._failures[engine]
                return None
        return f"skipped, failed {age:.0f}s ago ({failure.reason})"


#: Shared by every render in the process unless a caller passes its own.
default_health = EngineHealth()
