"""Validate and store uploaded recordings (a staff member's phone recording, a district file).

Files are probed with ffprobe, never trusted by name or extension, and stored under their
content hash: a user-supplied name never reaches the filesystem, and the same file uploaded
twice is stored once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from broadcasts.render_cache import file_sha256

MAX_BYTES = 50 * 1024 * 1024
MAX_SECONDS = 30 * 60.0

#: ffprobe format name -> stored extension. M4A shows up as the whole ISO-BMFF family.
_FORMATS: dict[str, str] = {
    "wav": "wav",
    "mp3": "mp3",
    "mov,mp4,m4a,3gp,3g2,mj2": "m4a",
    "ogg": "ogg",
}
_AUDIO_CODECS = {"mp3", "aac", "alac", "vorbis", "opus", "flac"}


class UploadRejected(ValueError):
    """The upload is not an acceptable recording; ``reason`` says why, for the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ProbedAudio:
    format: str  # "wav", "mp3", "m4a" or "ogg"
    codec: str
    duration_s: float


@dataclass(frozen=True)
class StoredUpload:
    sha256: str
    path: Path
    duration_s: float
    format: str


def _ffprobe(path: Path) -> dict:
    command = [
        "ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
        str(path),
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, timeout=30)
    except subprocess.TimeoutExpired as exc:
        raise UploadRejected("the file could not be analysed in time") from exc
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        hint = f" ({detail[-1][-120:]})" if detail else ""
        raise UploadRejected(f"not an audio file that can be read{hint}")
    return json.loads(done.stdout or b"{}")


def probe_upload(
    path: Path, *, max_bytes: int = MAX_BYTES, max_seconds: float = MAX_SECONDS
) -> ProbedAudio:
    """Check size, container, codec and duration; raise :class:`UploadRejected` otherwise."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise UploadRejected("the file is empty")
    if size > max_bytes:
        raise UploadRejected(
            f"file too big: {size / 1e6:.1f} MB, the limit is {max_bytes / 1e6:.0f} MB"
        )
    info = _ffprobe(path)
    format_name = info.get("format", {}).get("format_name", "")
    if format_name not in _FORMATS:
        raise UploadRejected(
            f"unsupported format {format_name or 'unknown'!r}: upload WAV, MP3, M4A or OGG"
        )
    streams = info.get("streams", [])
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    video = [
        s for s in streams
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
    ]  # fmt: skip
    if not audio:
        raise UploadRejected("the file has no audio stream")
    if video:
        raise UploadRejected("the file is a video; upload the audio only")
    codec = audio[0].get("codec_name", "")
    if not (codec in _AUDIO_CODECS or codec.startswith("pcm_")):
        raise UploadRejected(f"unsupported audio codec {codec!r}")
    try:
        duration = float(info["format"].get("duration") or audio[0].get("duration"))
    except (TypeError, ValueError, KeyError) as exc:
        raise UploadRejected("the duration of the recording cannot be determined") from exc
    if duration <= 0:
        raise UploadRejected("the recording is empty")
    if duration > max_seconds:
        raise UploadRejected(
            f"recording too long: {duration / 60:.1f} min, the limit is {max_seconds / 60:.0f} min"
        )
    return ProbedAudio(_FORMATS[format_name], codec, duration)


def store_upload(
    src_path: Path,
    store_dir: Path,
    *,
    max_bytes: int = MAX_BYTES,
    max_seconds: float = MAX_SECONDS,
) -> StoredUpload:
    """Validate ``src_path`` and copy it to ``store_dir/{sha256}.{ext}`` (atomically)."""
    probed = probe_upload(src_path, max_bytes=max_bytes, max_seconds=max_seconds)
    digest = file_sha256(Path(src_path))
    store_dir = Path(store_dir)
    store_dir.mkdir(parents=True, exist_ok=True)
    final = store_dir / f"{digest}.{probed.format}"
    if not final.is_file():
        fd, tmp = tempfile.mkstemp(dir=store_dir, prefix=".upload-", suffix=".tmp")
        os.close(fd)
        try:
            shutil.copyfile(src_path, tmp)
            os.replace(tmp, final)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return StoredUpload(digest, final, round(probed.duration_s, 3), probed.format)
