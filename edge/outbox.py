"""The outbox: reports and alerts are stored first and sent second, so none is lost.

A message enters the node's SQLite outbox (:class:`~edge.store.NodeStore`), goes to the
broker when the link is up, and leaves the outbox only when the broker acknowledged it
(PUBACK). A message sent but not acknowledged when the link drops goes again after the
reconnection: receivers deduplicate by the id every such payload carries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from edge.store import NodeStore
from mqtt_contract import Message

log = logging.getLogger(__name__)

FLUSH_BATCH = 200
"""Messages put on the wire per flush; the rest follow as acknowledgements come back."""

Send = Callable[[Message], "int | None"]


class Outbox:
    def __init__(self, store: NodeStore, send: Send) -> None:
        self.store, self.send = store, send
        self._inflight: dict[int, int] = {}
        """mid -> outbox seq of messages awaiting their PUBACK."""
        self._online = False

    def put(self, msg_id: str, msg: Message) -> None:
        """Keep ``msg`` until the broker has it; a second put of the same id is ignored."""
        self.store.enqueue(msg_id, msg.topic, msg.payload, msg.qos)
        self.flush()

    def flush(self) -> None:
        if not self._online:
            return
        busy = set(self._inflight.values())
        room = FLUSH_BATCH - len(busy)
        if room <= 0:
            return
        for pending in self.store.pending(limit=room + len(busy)):
            if pending.seq in busy:
                continue
            mid = self.send(Message(pending.topic, pending.payload, pending.qos, False))
            if mid is None:
                return  # the link went away: the rest waits in the store
            if pending.qos == 0:
                self.store.acknowledge(pending.seq)
            else:
                self._inflight[mid] = pending.seq

    def acknowledged(self, mid: int) -> None:
        seq = self._inflight.pop(mid, None)
        if seq is not None:
            self.store.acknowledge(seq)
            if not self._inflight:
                self.flush()  # the next batch, if the first was full

    def online(self) -> None:
        self._online = True
        self._inflight.clear()  # unacknowledged ones go again: receivers dedupe by id
        self.flush()

    def offline(self) -> None:
        self._online = False

    def pending_count(self) -> int:
        return self.store.pending_count()
