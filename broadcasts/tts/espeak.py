"""espeak-ng: the offline engine that is always there (robotic, but never fails for network)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping

from broadcasts.tts.base import EngineError, EngineUnavailable, Synthesis, check_voice

#: Words per minute when the caller gives no rate; espeak's own 175 is fast for loudspeakers.
DEFAULT_RATE = 160


class EspeakEngine:
    """Runs the espeak-ng CLI and takes the WAV from its stdout (no temp files)."""

    name = "espeak-ng"
    online = False

    def __init__(self, *, pitch: int = 50, executable: str = "espeak-ng", timeout: float = 60.0):
        self.pitch = max(0, min(99, pitch))
        self.executable = executable
        self.timeout = timeout

    def _binary(self) -> str:
        path = shutil.which(self.executable)
        if path is None:
            raise EngineUnavailable(f"{self.name}: not available: {self.executable!r} not found")
        return path

    def cache_identity(self, *, voice: str, rate: int | None) -> Mapping[str, object]:
        return {"voice": voice, "rate": rate or DEFAULT_RATE, "pitch": self.pitch}

    def synthesize(self, text: str, *, voice: str, rate: int | None) -> Synthesis:
        check_voice(voice)
        words_per_minute = max(80, min(450, rate or DEFAULT_RATE))
        command = [
            self._binary(), "-v", voice, "-s", str(words_per_minute), "-p", str(self.pitch),
            "-b", "1", "--stdout", "--stdin",
        ]  # fmt: skip
        try:
            done = subprocess.run(
                command, input=text.encode("utf-8"), capture_output=True, timeout=self.timeout
            )
        except subprocess.TimeoutExpired as exc:
            raise EngineError(f"{self.name}: timed out after {self.timeout:.0f}s") from exc
        if done.returncode != 0 or not done.stdout.startswith(b"RIFF"):
            detail = done.stderr.decode("utf-8", "replace").strip()[:200]
            raise EngineError(f"{self.name}: failed (exit {done.returncode}): {detail}")
        return Synthesis(done.stdout, "wav")
