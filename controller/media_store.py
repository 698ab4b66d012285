"""Content-addressed file store for the controller's audio (and, later, snapshots).

Files are named by their sha256, never by anything a user typed, so no upload can
overwrite another or escape the folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path

from mqtt_contract import MediaCodec

_SHA = re.compile(r"^[0-9a-f]{64}$")

RESEND_BURST_BYTES = 8 * 1024 * 1024
"""What one node may have re-sent at once: a whole 30 min clip (about 7 MB) it missed."""
RESEND_BYTES_PER_S = 128 * 1024
"""...and then this much per second: a node back from a long outage catches up within
minutes, while no node can make the controller send more than this for long (one request
listing chunk 0 thirty thousand times once made it send 188.7 MB in 4 s)."""
RESEND_NODES = 10_000
"""Budgets of at most this many nodes are remembered (the least recently used go)."""


class ResendBudget:
    """A token bucket of bytes per node, for chunks re-sent on a node's request.

    A node asking for more than its budget gets the chunks that fit; it asks again for
    the rest (edge/media.py does, every ``media_wait_s``). Bounded in memory."""

    def __init__(self, burst: int = RESEND_BURST_BYTES, rate: float = RESEND_BYTES_PER_S,
                 capacity: int = RESEND_NODES) -> None:
        self.burst, self.rate, self.capacity = burst, rate, capacity
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, node: str, wanted: int, unit: int, now: float | None = None) -> int:
        """How many of ``wanted`` items of ``unit`` bytes ``node`` may have now (taken)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, at = self._buckets.pop(node, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            granted = max(0, min(wanted, int(tokens // unit)))
            self._buckets[node] = (tokens - granted * unit, now)
            while len(self._buckets) > self.capacity:
                self._buckets.popitem(last=False)
            return granted


class MediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.resend_budget = ResendBudget()
        """Bytes each node may still have re-sent (see :class:`ResendBudget`)."""

    def path(self, sha256: str, codec: str) -> Path:
        if not _SHA.match(sha256) or not codec.isalnum():
            raise ValueError("bad media key")
        return self.root / f"{sha256}.{codec}"

    def has(self, sha256: str) -> bool:
        """Is there a file for ``sha256`` (in any wire codec)? A few stat calls, no
        database and no memory: the cheap first answer to a node's request for media
        (random sha256 requests once kept the MQTT thread busy for 20 s)."""
        return bool(_SHA.match(sha256)) and any(
            (self.root / f"{sha256}.{codec.value}").is_file() for codec in MediaCodec)

    def add(self, src: Path, codec: str) -> tuple[str, int]:
        """Copy ``src`` in under its sha256 (atomic); return (sha256, size)."""
        return self.add_bytes(src.read_bytes(), codec)

    def add_bytes(self, data: bytes, codec: str) -> tuple[str, int]:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest, codec)
        if not target.exists():
            tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            tmp.replace(target)
        return digest, len(data)

    def read_chunk(self, sha256: str, codec: str, index: int, chunk_size: int) -> bytes:
        with open(self.path(sha256, codec), "rb") as f:
            f.seek(index * chunk_size)
            return f.read(chunk_size)
