"""The relay runner: puts the slots that are due on air, retries a failing station,
takes each slot off at its end.

Every second (on the replica holding the plan-compiler lease) it asks which slot
occurrences span now (:func:`controller.services.relay.on_air`). A due occurrence
without a session gets one (:class:`~controller.live.LiveDesk`: ffmpeg pulls the station
at its own pace, no chime); a session whose station failed (ffmpeg ended: the stream
closed, stalled for ``IDLE_S``, or never answered) is ended and, after a back-off that
doubles from :data:`RETRY_FIRST_S` to :data:`RETRY_MAX_S`, tried again as a new session,
until the slot's end. Nodes end a session that stopped sending within seconds, so a
broken station is heard as silence with the amplifiers off, never as noise. Each try is
a row of the broadcast log (``live_broadcasts``, with the slot's id): what aired, for
how long, and why it ended; the station's last error is shown on the dashboard.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from controller.db import Database
from controller.live import LiveDesk
from controller.services import relay as relay_service
from controller.services.audit import Automatic
from controller.services.live import SYSTEM_ACTOR, LiveError
from mqtt_contract import LiveSource

log = logging.getLogger(__name__)

TICK_S = 1.0
"""How often the runner looks: a slot starts within this of its time (plus ffmpeg's
connect), its nodes at the session's latency after that."""
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0
RELAY_ACTOR = Automatic.relay
"""Who opens a slot's sessions in the audit log (the slot names who made it)."""


@dataclass
class _OnAir:
    airing: relay_service.Airing
    session_id: str | None = None
    retry_at: float = 0.0
    backoff_s: float = RETRY_FIRST_S
    tries: int = 0
    heard: bool = False
    """The current try has sent frames (the station answered)."""


class RelayRunner:
    def __init__(self, db: Database, desk: LiveDesk) -> None:
        self.db, self.desk = db, desk
        self._on_air: dict[tuple[int, datetime], _OnAir] = {}
        self._lock = threading.Lock()

    def tick(self, now: datetime | None = None) -> None:
        """Open what is due, retry what failed, end what is over (one pass)."""
        with self._lock:
            now = now or datetime.now(UTC)
            with self.db.session() as s:
                due = {(a.slot_id, a.start): a for a in relay_service.on_air(s, now)}
            for key in [k for k in self._on_air if k not in due]:
                self._end(self._on_air.pop(key), "the slot ended")
            for key, airing in due.items():
                state = self._on_air.setdefault(key, _OnAir(airing))
                self._keep_on_air(state, now)

    def _keep_on_air(self, state: _OnAir, now: datetime) -> None:
        if state.session_id is not None:
            feed = self.desk.feed(state.session_id)
            if feed is not None:
                if not state.heard and feed.stats.frames:
                    state.heard, state.backoff_s = True, RETRY_FIRST_S
                    with self.db.session() as s:
                        relay_service.note_source(s, state.airing.source_id, None)
                return  # on air
            self._failed(state, self._end_reason(state.session_id), now)
        if now.timestamp() >= state.retry_at:
            self._open(state, now)

    def _open(self, state: _OnAir, now: datetime) -> None:
        airing = state.airing
        state.tries += 1
        try:
            opened = self.desk.open(airing.targets, airing.title, LiveSource.relay,
                                    RELAY_ACTOR, airing.url, realtime=True, chime=False,
                                    relay_slot_id=airing.slot_id,
                                    stream_source_id=airing.source_id, commune=airing.commune)
        except (LiveError, OSError) as exc:
            self._failed(state, str(exc), now)
            return
        state.session_id, state.heard = opened.session.id, False
        log.info("relay slot %d: on air (try %d)", airing.slot_id, state.tries)

    def _failed(self, state: _OnAir, why: str, now: datetime) -> None:
        """The station failed: note it, back off, try again at ``retry_at``."""
        state.session_id = None
        state.retry_at = now.timestamp() + state.backoff_s
        log.warning("relay slot %d: the station failed (%s); trying again in %.0f s",
                    state.airing.slot_id, why, state.backoff_s)
        state.backoff_s = min(state.backoff_s * 2, RETRY_MAX_S)
        with self.db.session() as s:
            relay_service.note_source(s, state.airing.source_id, why)

    def _end_reason(self, session_id: str) -> str:
        from controller.models import LiveBroadcast

        with self.db.session() as s:
            record = s.get(LiveBroadcast, session_id)
            return (record.end_reason if record else None) or "the station stopped"

    def _end(self, state: _OnAir, why: str) -> None:
        if state.session_id and self.desk.feed(state.session_id) is not None:
            self.desk.close(state.session_id, SYSTEM_ACTOR, why)

    def stop(self) -> None:
        with self._lock:
            for state in self._on_air.values():
                self._end(state, "the controller stopped")
            self._on_air.clear()
