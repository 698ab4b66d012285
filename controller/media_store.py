"""Content-addressed file store for the controller's audio (and, later, snapshots).

Files are named by their sha256, never by anything a user typed, so no upload can
overwrite another or escape the folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path

_SHA = re.compile(r"^[0-9a-f]{64}$")


class MediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str, codec: str) -> Path:
        if not _SHA.match(sha256) or not codec.isalnum():
            raise ValueError("bad media key")
        return self.root / f"{sha256}.{codec}"

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
