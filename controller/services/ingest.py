"""What nodes report (status, telemetry, playback), written in batches.

One report per transaction cost the controller about 2 ms of SQLAlchemy work and a commit,
and a thousand nodes report within the same second of an emergency: on a two-core server
that CPU was taken from the broker and from the start wave itself. The MQTT thread only
queues what arrives (:class:`IngestQueue`, bounded); one writer (:class:`IngestWriter`)
takes what has gathered every :data:`FLUSH_S` and writes it in one transaction
(:func:`write_batch`): playback reports checked against the stored ids in one query, only
the newest telemetry of each node, statuses in the order they came. Nothing is lost when
the queue is full: the caller then writes that one report itself, as before.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from controller.models import Node, PlaybackLog
from controller.services import fleet, playback
from mqtt_contract import PlaybackReport, Status, Telemetry

log = logging.getLogger(__name__)

FLUSH_S = 0.1
"""How long reports gather before they are written (the log and the node list lag this)."""
MAX_BATCH = 1000
CAPACITY = 20_000
"""Reports waiting at most; past it the MQTT thread writes them one by one (slower, but
nothing is dropped: the broker has acknowledged them to the node already)."""
_IN_CHUNK = 500
"""Ids per ``IN (...)`` (SQLite allows a few thousand variables per statement)."""


@dataclass(frozen=True)
class Incoming:
    """One report as it came: its commune (the topic's) and its payload, whose type says
    what it is."""

    commune: str
    payload: Status | Telemetry | PlaybackReport

    @property
    def kind(self) -> str:
        return type(self.payload).__name__


class IngestQueue:
    """Bounded, thread-safe, first in first out."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._items: deque[Incoming] = deque()
        self._ready = threading.Condition()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Incoming) -> bool:
        """Queue ``item``; False when full (write it yourself)."""
        with self._ready:
            if len(self._items) >= self.capacity:
                return False
            self._items.append(item)
            self._ready.notify()
            return True

    def wait(self, timeout: float) -> bool:
        """Wait until something is queued (or ``timeout``); True if something is."""
        with self._ready:
            return bool(self._items) or self._ready.wait_for(lambda: bool(self._items),
                                                             timeout)

    def take(self, limit: int = MAX_BATCH) -> list[Incoming]:
        with self._ready:
            n = min(limit, len(self._items))
            return [self._items.popleft() for _ in range(n)]


def write_one(session: Session, item: Incoming) -> None:
    """One report on its own (a full queue, or a batch that met another replica's write)."""
    if isinstance(item.payload, Status):
        fleet.apply_status(session, item.commune, item.payload)
    elif isinstance(item.payload, Telemetry):
        fleet.apply_telemetry(session, item.commune, item.payload)
    else:
        playback.record_report(session, item.commune, item.payload)


def write_batch(session: Session, items: list[Incoming]) -> int:
    """Write ``items`` in ``session``'s transaction; returns the playback reports stored.
    A report id that another replica stores at the same moment makes the commit fail
    (unique key): the caller then writes the items one by one (:func:`write_one`)."""
    nodes = _nodes(session, {(i.commune, i.payload.node) for i in items
                             if isinstance(i.payload, Status)})
    newest_telemetry: dict[tuple[str, str], Telemetry] = {}
    for item in items:
        key = (item.commune, item.payload.node)
        if isinstance(item.payload, Status):
            fleet.apply_status(session, item.commune, item.payload, nodes[key])
        elif isinstance(item.payload, Telemetry):
            newest_telemetry[key] = item.payload
    _write_telemetry(session, newest_telemetry)
    return _store_reports(session, [(i.commune, i.payload) for i in items
                                    if isinstance(i.payload, PlaybackReport)])


_NODES = Node.__table__
_SET_TELEMETRY = (update(_NODES)
                  .where(_NODES.c.commune == bindparam("key_commune"),
                         _NODES.c.node_id == bindparam("key_node"))
                  .values({c: bindparam(c) for c in ("telemetry", "last_seen",
                                                     "plan_version_acked")}))


def _write_telemetry(session: Session, newest: dict[tuple[str, str], Telemetry]) -> None:
    """Each node's newest heartbeat, in one executemany UPDATE: 10,000 nodes every 30 s
    are 333 a second, and loading each node's row (its last telemetry JSON with it) to
    set three columns was most of the controller's work (benchmarks/heartbeats.py).
    A node not registered yet is registered first."""
    if not newest:
        return
    rows = {key: {"key_commune": key[0], "key_node": key[1], **fleet.telemetry_values(t)}
            for key, t in newest.items()}
    connection = session.connection()
    updated = connection.execute(_SET_TELEMETRY, list(rows.values())).rowcount
    if connection.dialect.supports_sane_multi_rowcount and updated == len(rows):
        return  # every node known: the common case costs no query more
    missing = set(newest) - _known(session, set(newest))
    for commune, node_id in sorted(missing):
        fleet.get_or_create_node(session, commune, node_id)
    if missing:
        connection.execute(_SET_TELEMETRY, [rows[key] for key in sorted(missing)])


def _known(session: Session, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of ``keys`` are registered nodes (columns only, through the (commune, node)
    index: no row is loaded, no table scanned)."""
    found: set[tuple[str, str]] = set()
    communes = sorted({commune for commune, _ in keys})
    for chunk in _chunks(sorted({node_id for _, node_id in keys})):
        found.update(session.execute(select(Node.commune, Node.node_id).where(
            Node.commune.in_(communes), Node.node_id.in_(chunk))).tuples())
    return found & keys


def _nodes(session: Session, keys: set[tuple[str, str]]) -> dict[tuple[str, str], Node]:
    """The nodes named, loaded in a few queries; unknown ones are created."""
    found: dict[tuple[str, str], Node] = {}
    ids = sorted({node_id for _, node_id in keys})
    communes = sorted({commune for commune, _ in keys})
    for chunk in _chunks(ids):  # commune and id: the (commune, node) index, not a scan
        for node in session.scalars(select(Node).where(Node.commune.in_(communes),
                                                       Node.node_id.in_(chunk))):
            found[(node.commune, node.node_id)] = node
    for key in sorted(keys - found.keys()):
        found[key] = fleet.get_or_create_node(session, *key)
    return found


def _store_reports(session: Session, reports: list[tuple[str, PlaybackReport]]) -> int:
    ids = [r.id for _, r in reports]
    stored = set()
    for chunk in _chunks(ids):
        stored.update(session.scalars(select(PlaybackLog.report_id)
                                      .where(PlaybackLog.report_id.in_(chunk))))
    added = 0
    for commune, report in reports:
        if report.id in stored:
            continue  # a replay (the node's outbox sends until acknowledged)
        stored.add(report.id)
        session.add(playback.log_row(commune, report))
        added += 1
    return added


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(values), _IN_CHUNK):
        yield values[i:i + _IN_CHUNK]


class IngestWriter:
    """The one thread that writes queued reports. ``write`` is called with a batch and
    does the transaction (the runtime's, so its commit hooks and fallbacks apply)."""

    def __init__(self, queue: IngestQueue, write: Callable[[list[Incoming]], None],
                 flush_s: float = FLUSH_S) -> None:
        self.queue, self.write, self.flush_s = queue, write, flush_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loaxa-ingest", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after writing what is queued."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.flush()

    def flush(self) -> None:
        while batch := self.queue.take():
            try:
                self.write(batch)
            except Exception:  # the next batch must still go in; these are in the log
                log.exception("writing %d node reports failed", len(batch))

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.queue.wait(0.5) and not self._stop.wait(self.flush_s):
                self.flush()
