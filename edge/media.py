"""Media fetching: which clips the node still needs, their chunks, and asking for the rest.

Chunks arrive as the controller broadcasts them (once per commune or zone, the broker fans
them out), in any order and possibly before the plan or command that names them; the
cache keeps and verifies them. A clip a plan or command needs that stops making progress
for ``wait_s`` is asked for (``media/request``, the chunks still missing), and asked again
every ``wait_s`` until it is complete.

Only media a plan or command names stays (issue 10): chunks of media nobody named yet are
held for :data:`UNNAMED_TTL_S` at most (the emergency broadcast goes out just before its
command), within the cache's cap, oldest evicted first; a clip the plan no longer names,
and that no command named within :data:`COMMAND_HOLD_S`, is forgotten with its chunks.
Other nodes' announcements, fanned out commune-wide, therefore never fill ``partial/``.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from edge.loop import Reactor, Timer
from edge.media_cache import MediaCache, StorageFull
from mqtt_contract import MAX_CHUNK_SIZE, MEDIA_REQUEST, MediaRef, MediaRequest, Message

log = logging.getLogger(__name__)

UNNAMED_TTL_S = 300.0
"""How long chunks of media no plan or command names are held, waiting to be named."""
MAX_UNNAMED_MEDIA = 32
"""At most this many unnamed media are held at once (the oldest go first)."""
COMMAND_HOLD_S = 600.0
"""Media named by a command (not by the plan) is kept wanted at least this long."""


@dataclass
class Want:
    ref: MediaRef
    last_progress: float
    last_request: float = 0.0
    named_at: float = field(default_factory=time.monotonic)
    """When a plan or command last named it."""


class MediaFetcher:
    def __init__(self, loop: Reactor, cache: MediaCache, commune: str, node: str,
                 wait_s: float, send: Callable[[Message], object],
                 completed: Callable[[MediaRef], None]) -> None:
        self.loop, self.cache, self.commune, self.node = loop, cache, commune, node
        self.wait_s, self.send, self.completed = wait_s, send, completed
        self.wants: dict[str, Want] = {}
        self.online = False
        self._check: Timer | None = None
        self._plan_named: set[str] | None = None
        """What the plan names; None until the agent says (nothing is released before)."""
        self._unnamed: OrderedDict[str, float] = OrderedDict(
            (sha, time.monotonic()) for sha in cache.partial_media())
        """Media with chunks held but named by nobody yet -> when first seen (those left
        from before a restart count from the start)."""

    def want(self, ref: MediaRef) -> None:
        """The node needs ``ref`` (a plan item, a command): fetch it unless it is here."""
        if want := self.wants.get(ref.sha256):
            want.named_at = time.monotonic()
            return
        self._unnamed.pop(ref.sha256, None)
        self.cache.mark_wanted(ref.sha256, True)
        if self._complete(ref):
            self.cache.mark_wanted(ref.sha256, False)
            return
        self.wants[ref.sha256] = Want(ref, time.monotonic())
        self._arm()

    def keep_only(self, named: set[str]) -> None:
        """A new plan names ``named``: forget what it no longer names (unless a command
        named it lately), chunks included."""
        self._plan_named = set(named)
        self._release_unnamed(time.monotonic())

    def chunk(self, sha256: str, index: int, data: bytes) -> None:
        want = self.wants.get(sha256)
        if want is None:
            self._hold_unnamed(sha256, index, data)
            return
        if index >= want.ref.chunks or len(data) > want.ref.chunk_size:
            log.warning("chunk %s/%d does not fit its media; dropped", sha256[:12], index)
            return
        try:
            self.cache.add_chunk(sha256, index, data)
        except StorageFull:
            return  # logged by the cache; asked for again with the other missing chunks
        want.last_progress = time.monotonic()
        if self._complete(want.ref):
            self._done(want)

    def _complete(self, ref: MediaRef) -> bool:
        """Assembled and verified; False if not (yet), or if the disk has no room for the
        file (the chunks stay, and assembling is tried again on the next check)."""
        try:
            return self.cache.complete(ref) is not None
        except StorageFull:
            return False

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

    # unnamed media ----------------------------------------------------------------------
    def _hold_unnamed(self, sha256: str, index: int, data: bytes) -> None:
        """Hold a chunk of media nobody named yet, if it fits: expired and then the oldest
        unnamed media make room; wanted media never does."""
        if self.cache.has(sha256) or len(data) > MAX_CHUNK_SIZE:
            return  # (a chunk no ref could name must not evict the others)
        now = time.monotonic()
        self._expire_unnamed(now)
        if sha256 not in self._unnamed:
            while len(self._unnamed) >= MAX_UNNAMED_MEDIA:
                self._evict_oldest_unnamed()
            self._unnamed[sha256] = now
            self._arm()  # its expiry is looked at even if nothing else is fetched
        while not self._add_unnamed(sha256, index, data):
            if next(iter(self._unnamed)) == sha256:
                log.debug("no room for unnamed chunk %s/%d; dropped", sha256[:12], index)
                if not self.cache.partial_bytes(sha256):
                    self._unnamed.pop(sha256, None)
                return
            self._evict_oldest_unnamed()

    def _add_unnamed(self, sha256: str, index: int, data: bytes) -> bool:
        try:
            return self.cache.add_chunk(sha256, index, data, wanted=False)
        except StorageFull:
            return False  # the disk is full: unnamed media makes room, or is dropped

    def _evict_oldest_unnamed(self) -> None:
        sha, _ = self._unnamed.popitem(last=False)
        self.cache.drop_partial(sha)

    def _expire_unnamed(self, now: float) -> None:
        while self._unnamed and now - next(iter(self._unnamed.values())) > UNNAMED_TTL_S:
            self._evict_oldest_unnamed()

    def _release_unnamed(self, now: float) -> None:
        """Forget wants that neither the plan nor a recent command names."""
        if self._plan_named is None:
            return
        for sha, want in list(self.wants.items()):
            if sha not in self._plan_named and now - want.named_at > COMMAND_HOLD_S:
                del self.wants[sha]
                self.cache.drop_partial(sha)
                log.info("media %s is no longer named; its chunks are dropped", sha[:12])

    def _done(self, want: Want) -> None:
        self.wants.pop(want.ref.sha256, None)
        self.cache.mark_wanted(want.ref.sha256, False)
        self.completed(want.ref)

    # requests ---------------------------------------------------------------------------
    def _arm(self, delay: float | None = None) -> None:
        if self._check is None and (self.wants or self._unnamed):
            self._check = self.loop.call_later(self.wait_s if delay is None else delay,
                                               self._request_missing)

    def _request_missing(self) -> None:
        """Ask for chunks the broadcast did not bring (node offline, or joined late)."""
        self._check = None
        now = time.monotonic()
        self._expire_unnamed(now)
        self._release_unnamed(now)
        for sha, want in list(self.wants.items()):
            if self._complete(want.ref):
                self._done(want)
                continue
            stalled = now - want.last_progress >= self.wait_s
            if self.online and stalled and now - want.last_request >= self.wait_s:
                missing = self.cache.missing_chunks(want.ref)
                request = MediaRequest(node=self.node, sha256=sha, chunks=missing)
                self.send(MEDIA_REQUEST.message(self.commune, request, node=self.node))
                want.last_request = now
                log.info("asked for %d missing chunks of %s", len(missing), sha[:12])
        self._arm(min(self.wait_s, 1.0))
