"""Content-addressed media cache with resumable, sha256-verified chunk assembly.

Chunks arrive over MQTT in any order, possibly twice, possibly before the plan that
needs them. Each chunk is written atomically to ``partial/<sha>/<index>``; once all are
present the file is assembled, its sha256 checked, and moved into ``media/<sha>.<codec>``
in one rename. A restart keeps the chunks already received, so a download resumes.

A full disk (an SD card) is met by evicting the least recently used complete media that
no plan names, and only that (media keeps :data:`RESERVE_BYTES` free for the node's own
store); if there is still no room the write fails with
:class:`StorageFull` (logged as an error, and named in the failed playback report), and
the chunk is asked for again later. Use is the file's mtime, touched when a clip is
prepared for playing (:meth:`MediaCache.touch`).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mqtt_contract import MAX_CHUNK_SIZE, MediaCodec, MediaRef

log = logging.getLogger(__name__)
T = TypeVar("T")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

MAX_PARTIAL_BYTES = 64 * 1024 * 1024
"""Cap on chunks kept for media no plan or command names (yet): a broadcast may overtake
the plan or command that names it, so some are held for a while (edge/media.py), but
never more than this. Wanted media is outside the cap (each ref is bounded by the
contract), so a flood of other nodes' media can never starve it."""


class StorageFull(OSError):
    """No room on the node's disk for media, even after evicting all it may evict."""


RESERVE_BYTES = 16 * 1024 * 1024
"""Media never takes the node's disk below this much free space (its SQLite store, its
logs and decoded clips need it)."""
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
"""Complete media kept beyond what the plan names, at most (pruned when a plan comes)."""


def atomic_write(path: Path, data: bytes, durable: bool = True) -> None:
    """Write via a temporary file and a rename; ``durable`` also fsyncs before the rename.

    Chunks are written without fsync: a chunk torn by a power cut only makes the
    assembled file fail its sha256 check, and the node fetches the file again, whereas an
    fsync per 32 KiB chunk costs milliseconds of disk time each, per node.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a disk-full write leaves no half file behind
        raise


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class MediaCache:
    def __init__(self, root: Path, derived: Path | None = None) -> None:
        """``derived``: where files made from a media file live, named ``{sha256}-…``
        (the scheduler's decoded clips): they go when their media goes."""
        self.media_dir = root / "media"
        self.partial_dir = root / "partial"
        self.derived_dir = derived
        self.media_dir.mkdir(parents=True, exist_ok=True)
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._partial_lock = threading.Lock()
        self._files: dict[str, Path] | None = None
        """sha256 -> file of the complete media: listed once, then kept up to date (a
        folder scan per question cost a third of a millisecond, per node, per message)."""
        self._verified: set[str] = set()
        """Media whose sha256 this process has checked (once each, before first use)."""
        self._sizes: dict[str, int] | None = None
        """sha256 -> bytes held in ``partial/``: scanned once, then kept up to date."""
        self._wanted: set[str] = set()
        """Media a plan or command names (the fetcher says which): outside the cap."""
        self._keep: set[str] = set()
        """Complete media the plan names (:meth:`prune`): never evicted."""
        self.full = False
        """The last write found no room, even after evicting (cleared by the next one)."""

    def path(self, sha256: str) -> Path | None:
        """The complete, verified file of ``sha256``, if the cache holds it."""
        if self._files is None:
            self._files = {p.name.split(".")[0]: p for p in self.media_dir.iterdir()
                           if not p.name.startswith(".")}
        found = self._files.get(sha256)
        if found is None:
            return None
        if sha256 not in self._verified:
            if not found.exists() or sha256_file(found) != sha256:
                log.warning("media %s is missing or damaged on disk; fetched again",
                            sha256[:12])
                found.unlink(missing_ok=True)
                del self._files[sha256]
                return None
            self._verified.add(sha256)
        return found

    def has(self, sha256: str) -> bool:
        return self.path(sha256) is not None

    def count(self) -> int:
        self.path("")  # loads the index
        return len(self._files or {})

    def _added(self, sha256: str, path: Path) -> None:
        """A file this process wrote and verified."""
        self._verified.add(sha256)
        if self._files is not None:
            self._files[sha256] = path

    def received_chunks(self, sha256: str) -> set[int]:
        d = self.partial_dir / sha256
        return {int(p.name) for p in d.iterdir() if p.name.isdigit()} if d.is_dir() else set()

    def missing_chunks(self, ref: MediaRef) -> list[int]:
        if self.has(ref.sha256):
            return []
        got = self.received_chunks(ref.sha256)
        return [i for i in range(ref.chunks) if i not in got]

    def add_chunk(self, sha256: str, index: int, data: bytes, wanted: bool = True) -> bool:
        """Keep one chunk (idempotent); call :meth:`complete` to try to assemble. Chunks of
        media the node wants are always kept (their number and size are bounded by the ref
        that names them); others only while the unnamed ones stay under
        :data:`MAX_PARTIAL_BYTES` (the fetcher evicts old unnamed media to make room).
        Returns whether the chunk is (now) held."""
        if self.has(sha256) or index < 0 or len(data) > MAX_CHUNK_SIZE:
            return False
        d = self.partial_dir / sha256
        if (d / str(index)).exists():
            return True
        with self._partial_lock:
            sizes = self._partial_sizes()
            if not wanted and self._unnamed_total(sizes) + len(data) > MAX_PARTIAL_BYTES:
                log.debug("no room for unnamed chunk %s/%d", sha256[:12], index)
                return False
        self._with_room(lambda: (d.mkdir(exist_ok=True),
                                 atomic_write(d / str(index), data, durable=False)),
                        len(data), f"chunk {index} of {sha256[:12]}")
        with self._partial_lock:
            sizes[sha256] = sizes.get(sha256, 0) + len(data)
        return True

    def mark_wanted(self, sha256: str, wanted: bool) -> None:
        """Wanted media does not count against the unnamed media's cap."""
        with self._partial_lock:
            (self._wanted.add if wanted else self._wanted.discard)(sha256)

    def drop_partial(self, sha256: str) -> None:
        """Remove the chunks held for ``sha256`` (media no plan or command names)."""
        shutil.rmtree(self.partial_dir / sha256, ignore_errors=True)
        with self._partial_lock:
            if self._sizes is not None:
                self._sizes.pop(sha256, None)
            self._wanted.discard(sha256)

    def partial_media(self) -> list[str]:
        """The sha256 of every media with chunks in ``partial/``, oldest first."""
        dirs = [p for p in self.partial_dir.iterdir() if p.is_dir()]
        return [p.name for p in sorted(dirs, key=lambda p: p.stat().st_mtime)]

    def partial_bytes(self, sha256: str | None = None) -> int:
        """Bytes held in ``partial/`` (for one media, or in all)."""
        with self._partial_lock:
            sizes = self._partial_sizes()
            return sizes.get(sha256, 0) if sha256 else sum(sizes.values())

    def unnamed_bytes(self) -> int:
        with self._partial_lock:
            return self._unnamed_total(self._partial_sizes())

    def _unnamed_total(self, sizes: dict[str, int]) -> int:
        return sum(n for sha, n in sizes.items() if sha not in self._wanted)

    def complete(self, ref: MediaRef) -> Path | None:
        """Assemble and verify ``ref`` if every chunk is here; None if some are missing.

        A file whose sha256 does not match is thrown away whole (chunks included), and the
        node asks for it again. No fsync: a file torn by a power cut fails the check the
        next process makes before first using it (:meth:`path`) and is fetched again; an
        fsync per file cost a thousand simulated nodes seconds of one shared disk.
        """
        with self._lock:
            if existing := self.path(ref.sha256):
                return existing
            if self.missing_chunks(ref):
                return None
            d = self.partial_dir / ref.sha256
            target = self._target(ref)
            tmp = target.with_name(f".{target.name}.tmp")
            h = self._with_room(lambda: self._assemble(d, ref.chunks, tmp), ref.size,
                                f"media {ref.sha256[:12]}")
            shutil.rmtree(d, ignore_errors=True)
            with self._partial_lock:
                if self._sizes is not None:
                    self._sizes.pop(ref.sha256, None)
            if h.hexdigest() != ref.sha256:
                tmp.unlink(missing_ok=True)
                log.error("media %s failed its sha256 check; discarded", ref.sha256[:12])
                return None
            tmp.replace(target)
            self._added(ref.sha256, target)
            log.info("media %s complete (%d bytes)", ref.sha256[:12], ref.size)
            return target

    @staticmethod
    def _assemble(d: Path, chunks: int, tmp: Path) -> Any:
        h = hashlib.sha256()
        try:
            with open(tmp, "wb") as out:
                for i in range(chunks):
                    block = (d / str(i)).read_bytes()
                    h.update(block)
                    out.write(block)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        return h

    def _with_room(self, write: Callable[[], T], need: int, what: str) -> T:
        """Run ``write`` if the disk keeps :data:`RESERVE_BYTES` free after it, evicting
        the least recently used media no plan names to get there; otherwise (or if the
        disk fills anyway) raise :class:`StorageFull`. The reserve is for the node's own
        store: a playback report that cannot be written is lost."""
        short = self._shortfall(need)
        if short > 0:
            if freed := self.evict(short):
                log.error("node storage nearly full writing %s: evicted %d bytes of media "
                          "no plan names", what, freed)
            if self._shortfall(need) > 0:
                raise self._full(what, need)
        try:
            result = write()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            raise self._full(what, need) from exc
        self.full = False
        return result

    def _shortfall(self, need: int) -> int:
        return need + RESERVE_BYTES - shutil.disk_usage(self.media_dir).free

    def _full(self, what: str, need: int) -> StorageFull:
        """Said once as an error when the disk becomes full (retries are debug lines)."""
        (log.debug if self.full else log.error)(
            "node storage full: no room for %s (%d bytes) with only scheduled media left; "
            "it is asked for again later", what, need)
        self.full = True
        return StorageFull(errno.ENOSPC, f"node storage full: no room for {what}")

    def touch(self, sha256: str) -> None:
        """``sha256`` is being used: it becomes the most recently used (eviction order)."""
        if found := self.path(sha256):
            found.touch(exist_ok=True)

    def evict(self, need: int) -> int:
        """Delete complete media no plan names, least recently used first, until ``need``
        bytes are freed; return the bytes freed."""
        freed = 0
        for p in self._by_use():
            if freed >= need:
                break
            if p.name.split(".")[0] not in self._keep:
                freed += self._drop(p)
        return freed

    def _by_use(self) -> list[Path]:
        files = [p for p in self.media_dir.iterdir() if not p.name.startswith(".")]
        return sorted(files, key=lambda p: p.stat().st_mtime)

    def _drop(self, p: Path) -> int:
        """Delete a media file and what was derived from it; return the bytes freed."""
        sha = p.name.split(".")[0]
        derived = list(self.derived_dir.glob(f"{sha}-*")) if self.derived_dir else []
        size = 0
        for f in [p, *derived]:
            size += f.stat().st_size
            f.unlink(missing_ok=True)
        self._verified.discard(sha)
        if self._files is not None:
            self._files.pop(sha, None)
        log.info("media %s evicted (%d bytes)", sha[:12], size)
        return size

    def put_file(self, ref: MediaRef, src: Path) -> Path:
        """Add a locally produced file (e.g. a reminder clip rendered on the node)."""
        target = self._target(ref)
        if sha256_file(src) != ref.sha256:
            raise ValueError(f"{src} does not match sha256 {ref.sha256}")
        if not target.exists():
            data = src.read_bytes()
            self._with_room(lambda: atomic_write(target, data, durable=False), len(data),
                            f"media {ref.sha256[:12]}")
        self._added(ref.sha256, target)
        return target

    def prune(self, keep: set[str], max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        """A new plan names ``keep`` (never evicted from now on); drop the least recently
        used of the rest once the cache is over ``max_bytes``."""
        self._keep = set(keep)
        total = sum(p.stat().st_size for p in self._by_use())
        if total > max_bytes:
            self.evict(total - max_bytes)

    def _target(self, ref: MediaRef) -> Path:
        """Where complete media lives: named by sha256 and a known codec only. The contract
        refuses other codecs; this is the second lock on the same door (a ``../`` codec
        once reached this join)."""
        if not _SHA256.match(ref.sha256) or ref.codec not in set(MediaCodec):
            raise ValueError(f"bad media key {ref.sha256[:12]!r}.{ref.codec!r}")
        return self.media_dir / f"{ref.sha256}.{MediaCodec(ref.codec).value}"

    def _partial_sizes(self) -> dict[str, int]:
        """Bytes per media in ``partial/`` (call with ``_partial_lock`` held): scanned once,
        then kept up to date, so adding a chunk does not walk the folder."""
        if self._sizes is None:
            self._sizes = {}
            for d in self.partial_dir.iterdir():
                if d.is_dir():
                    self._sizes[d.name] = sum(p.stat().st_size for p in d.iterdir()
                                              if p.is_file())
        return self._sizes
