"""The test tone a technician triggers from the controller: 2 s of 1 kHz, made locally."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from mqtt_contract import MediaRef


def test_tone_media(directory: Path, seconds: float = 2.0) -> tuple[MediaRef, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tone-1khz.wav"
    if not path.exists():
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"sine=frequency=1000:duration={seconds}", "-ac", "1", "-ar", "24000",
                        str(path)], check=True, timeout=30)
    data = path.read_bytes()
    ref = MediaRef(sha256=hashlib.sha256(data).hexdigest(), size=len(data), codec="wav",
                   duration_s=seconds)
    return ref, path
