"""Disk cache of synthesised speech keyed by (engine, voice, rate, normalised text).

A repeated announcement (the same bulletin morning and evening, a reminder re-sent to 28
village points) is synthesised once. Entries are the engine's own bytes; writes are atomic
(temp file + rename) so a node that loses power mid-write never reads half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from broadcasts.tts.base import AudioFormat, Synthesis

#: Bump when the way a key maps to audio changes, to orphan old entries.
KEY_VERSION = 1


def default_cache_dir() -> Path:
    """``$LOAXA_CACHE_DIR`` or the XDG cache dir; both the controller and edges use it."""
    explicit = os.environ.get("LOAXA_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "loaxa" / "content"


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class TtsCache:
    """Content cache under ``root/tts``."""

    def __init__(self, root: Path):
        self.root = Path(root) / "tts"

    @staticmethod
    def key(engine: str, identity: Mapping[str, object], text: str) -> str:
        payload = {"v": KEY_VERSION, "engine": engine, "params": dict(identity), "text": text}
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _path(self, key: str, fmt: AudioFormat) -> Path:
        return self.root / key[:2] / f"{key}.{fmt}"

    def get(self, key: str) -> Synthesis | None:
        for fmt in ("wav", "mp3"):
            path = self._path(key, fmt)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            if data:
                return Synthesis(data, fmt)
        return None

    def put(self, key: str, synthesis: Synthesis) -> None:
        atomic_write(self._path(key, synthesis.format), synthesis.data)
