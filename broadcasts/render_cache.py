"""Index of finished renders: identical input (items + options) returns the same file.

The key covers everything that changes the output bytes (items, recording contents, engine
request, voice, rate, lexicon, codec, bitrate, pipeline version). An entry made while the
preferred engine was failing is "degraded": it is reused only while that engine is still
remembered as down, so a node whose link comes back renders the better voice again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from broadcasts.tts.cache import atomic_write

PIPELINE_VERSION = 1


@dataclass(frozen=True)
class RenderEntry:
    sha256: str
    ext: str
    size: int
    duration_s: float
    codec: str
    engine: str
    fallback_reason: str | None
    failed_engines: tuple[str, ...]
    path: str


_file_digests: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file, memoised by (path, size, mtime) so cached renders stay cheap."""
    stat = path.stat()
    memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    digest = _file_digests.get(memo)
    if digest is None:
        sha = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        if len(_file_digests) >= 4096:  # a long-running controller: keep the memo bounded
            _file_digests.clear()
        digest = _file_digests[memo] = sha.hexdigest()
    return digest


def render_key(payload: dict[str, object]) -> str:
    blob = json.dumps({"v": PIPELINE_VERSION, **payload}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class RenderCache:
    def __init__(self, root: Path):
        self.root = Path(root) / "renders"

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> RenderEntry | None:
        try:
            data = json.loads(self._path(key).read_text("utf-8"))
            data["failed_engines"] = tuple(data.get("failed_engines", ()))
            return RenderEntry(**data)
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def put(self, key: str, entry: RenderEntry) -> None:
        atomic_write(self._path(key), json.dumps(asdict(entry), ensure_ascii=False).encode())
