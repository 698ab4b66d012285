"""Helpers shared by the content pipeline tests (a plain module: importable by name)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


class CountingEngine:
    """Wraps a real engine and counts synthesis calls (to prove cache hits)."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.online = inner.online
        self.calls = 0

    def synthesize(self, text: str, *, voice: str, rate: int | None):
        self.calls += 1
        return self.inner.synthesize(text, voice=voice, rate=rate)

    def cache_identity(self, *, voice: str, rate: int | None):
        return self.inner.cache_identity(voice=voice, rate=rate)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def ffprobe_json(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
         str(path)],
        capture_output=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def ebur128_lufs(path: Path) -> float:
    """Integrated loudness by ffmpeg's own ebur128 filter: independent of our meter."""
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-af", "ebur128", "-f", "null",
         "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    summary = done.stderr[done.stderr.rindex("Integrated loudness:") :]
    return float(summary.split("I:")[1].split("LUFS")[0])
