"""Media fetching: which clips the node still needs, their chunks, and asking for the rest.

Chunks arrive as the controller broadcasts them (once per commune or zone, the broker fans
them out), in any order and possibly before the plan that names them; the cache keeps and
verifies them. A clip a plan or command needs that stops making progress for
``wait_s`` is asked for (``media/request``, the chunks still missing), and asked again
every ``wait_s`` until it is complete.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge.loop import Reactor, Timer
from edge.media_cache import MediaCache
from mqtt_contract import MEDIA_REQUEST, MediaRef, MediaRequest, Message

log = logging.getLogger(__name__)


@dataclass
class Want:
    ref: MediaRef
    last_progress: float
    last_request: float = 0.0


class MediaFetcher:
    def __init__(self, loop: Reactor, cache: MediaCache, commune: str, node: str,
                 wait_s: float, send: Callable[[Message], object],
                 completed: Callable[[MediaRef], None]) -> None:
        self.loop, self.cache, self.commune, self.node = loop, cache, commune, node
        self.wait_s, self.send, self.completed = wait_s, send, completed
        self.wants: dict[str, Want] = {}
        self.online = False
        self._check: Timer | None = None

    def want(self, ref: MediaRef) -> None:
        """The node needs ``ref`` (a plan item, a command): fetch it unless it is here."""
        if ref.sha256 in self.wants or self.cache.complete(ref):
            return
        self.wants[ref.sha256] = Want(ref, time.monotonic())
        self._arm()

    def chunk(self, sha256: str, index: int, data: bytes) -> None:
        self.cache.add_chunk(sha256, index, data)
        want = self.wants.get(sha256)
        if want is None:
            return
        want.last_progress = time.monotonic()
        if self.cache.complete(want.ref):
            del self.wants[sha256]
            self.completed(want.ref)

    def set_online(self, online: bool) -> None:
        self.online = online
        if online:
            for want in self.wants.values():
                want.last_request = 0.0  # ask again at once for what is still missing
            self._arm(0.0)

    def resync(self) -> None:
        for want in self.wants.values():
            want.last_request = want.last_progress = 0.0
        self._arm(0.0)

    def _arm(self, delay: float | None = None) -> None:
        if self._check is None and self.wants:
            self._check = self.loop.call_later(self.wait_s if delay is None else delay,
                                               self._request_missing)

    def _request_missing(self) -> None:
        """Ask for chunks the broadcast did not bring (node offline, or joined late)."""
        self._check = None
        now = time.monotonic()
        for sha, want in list(self.wants.items()):
            if self.cache.complete(want.ref):
                del self.wants[sha]
                self.completed(want.ref)
                continue
            stalled = now - want.last_progress >= self.wait_s
            if self.online and stalled and now - want.last_request >= self.wait_s:
                missing = self.cache.missing_chunks(want.ref)
                request = MediaRequest(node=self.node, sha256=sha, chunks=missing)
                self.send(MEDIA_REQUEST.message(self.commune, request, node=self.node))
                want.last_request = now
                log.info("asked for %d missing chunks of %s", len(missing), sha[:12])
        self._arm(min(self.wait_s, 1.0))
