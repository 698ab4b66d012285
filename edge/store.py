"""The node's own SQLite store: its plan, what it already played, settings and outbox.

Everything that must survive a restart or an outage lives here, so a node that reboots
mid-day still knows its programme and never plays an item twice (the item states are the
"exactly-once in effect" half of the contract). One connection guarded by a lock: the
agent runs on one event loop and the writes are tiny; the lock only serves callers on
other threads (tests, status pages) reading while it writes. WAL keeps readers from
blocking.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from mqtt_contract import Plan, PlaybackEvent

SCHEMA = """
CREATE TABLE IF NOT EXISTS plan (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS item_state (
    item_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS setting (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accepted_seq (
    stream TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    created_at REAL NOT NULL
);
"""

class ItemState(StrEnum):
    """Where one plan item or command stands on this node. The final ones are the
    playback events a node reports (mqtt_contract.PlaybackEvent), by the same names."""

    queued = "queued"
    started = "started"
    finished = PlaybackEvent.finished.value
    failed = PlaybackEvent.failed.value
    preempted = PlaybackEvent.preempted.value
    skipped = PlaybackEvent.skipped.value
    stopped = PlaybackEvent.stopped.value

    @classmethod
    def after(cls, event: PlaybackEvent) -> ItemState:
        return cls(event.value)


FINAL_STATES = frozenset({ItemState.finished, ItemState.failed, ItemState.preempted,
                          ItemState.skipped, ItemState.stopped})


@dataclass(frozen=True)
class OutboxMessage:
    seq: int
    msg_id: str
    topic: str
    payload: bytes
    qos: int


class NodeStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _exec(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # plan -------------------------------------------------------------------------
    def load_plan(self) -> Plan | None:
        rows = self._exec("SELECT body FROM plan WHERE id = 1")
        return Plan.model_validate_json(rows[0][0]) if rows else None

    def save_plan(self, plan: Plan) -> None:
        """Hold ``plan`` in place of the one held (its signature's sequence was newer)."""
        self._exec("INSERT OR REPLACE INTO plan (id, version, body) VALUES (1, ?, ?)",
                   (plan.version, plan.model_dump_json()))

    # signed-message order ---------------------------------------------------------------
    def accept_seq(self, stream: str, seq: int) -> int | None:
        """Record ``seq`` as the last taken on ``stream`` if it is newer than the last one;
        otherwise change nothing. Returns the last one before (None: nothing yet). Kept in
        SQLite so a restarted node still refuses what it took before (replays)."""
        with self._lock:
            row = self._db.execute("SELECT seq FROM accepted_seq WHERE stream = ?",
                                   (stream,)).fetchone()
            if row is None or row[0] < seq:
                self._db.execute("INSERT OR REPLACE INTO accepted_seq (stream, seq) "
                                 "VALUES (?, ?)", (stream, seq))
            return row[0] if row else None

    # item states --------------------------------------------------------------------
    def set_item_states(self, states: dict[str, str]) -> None:
        """Several states in one transaction (one commit)."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO item_state (item_id, state, updated_at) "
                "VALUES (?, ?, ?)", [(k, v, now) for k, v in states.items()])
            self._db.execute("COMMIT")

    def item_states(self) -> dict[str, str]:
        return dict(self._exec("SELECT item_id, state FROM item_state"))

    def forget_item_states(self, keep: set[str], older_than: float) -> list[str]:
        """Drop outcomes of items no plan holds any more (the table would grow forever);
        those still in the plan are kept, so they are never played or reported twice.
        Returns the ids forgotten."""
        with self._lock:
            rows = self._db.execute("SELECT item_id FROM item_state WHERE updated_at < ?",
                                    (older_than,)).fetchall()
            stale = [r[0] for r in rows if r[0] not in keep]
            self._db.executemany("DELETE FROM item_state WHERE item_id = ?",
                                 [(s,) for s in stale])
        return stale

    # settings -----------------------------------------------------------------------
    def get_setting(self, key: str) -> str | None:
        rows = self._exec("SELECT value FROM setting WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_setting(self, key: str, value: str) -> None:
        self._exec("INSERT OR REPLACE INTO setting (key, value) VALUES (?, ?)", (key, value))

    # outbox -------------------------------------------------------------------------
    def enqueue(self, msg_id: str, topic: str, payload: bytes, qos: int = 1) -> None:
        """Keep a message until the broker acknowledges it; a duplicate id is ignored."""
        self._exec(
            "INSERT OR IGNORE INTO outbox (msg_id, topic, payload, qos, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (msg_id, topic, payload, qos, time.time()),
        )

    def pending(self, limit: int = 100) -> list[OutboxMessage]:
        rows = self._exec(
            "SELECT seq, msg_id, topic, payload, qos FROM outbox ORDER BY seq LIMIT ?", (limit,)
        )
        return [OutboxMessage(*r) for r in rows]

    def acknowledge(self, seq: int) -> None:
        self._exec("DELETE FROM outbox WHERE seq = ?", (seq,))

    def pending_count(self) -> int:
        return self._exec("SELECT COUNT(*) FROM outbox")[0][0]
