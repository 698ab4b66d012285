"""Piper: neural offline TTS, used only when a voice model file is configured.

No Vietnamese Piper voice ships with the project (models are downloaded separately), so by
default this engine reports itself unavailable with a clear reason and the chain moves on to
espeak-ng. Configure it with ``LOAXA_PIPER_MODEL=/path/vi_VN-....onnx`` (and the ``piper``
CLI on PATH, from the ``piper-tts`` package).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from broadcasts.tts.base import EngineError, EngineUnavailable, Synthesis, check_voice

MODEL_ENV = "LOAXA_PIPER_MODEL"
#: Piper's speaking rate is a length scale; 1.0 is the model's own pace (~160 wpm).
NATURAL_WPM = 160


def configured_model() -> Path | None:
    value = os.environ.get(MODEL_ENV, "").strip()
    return Path(value) if value else None


class PiperEngine:
    """Runs the piper CLI: text on stdin, WAV to a temp file."""

    name = "piper"
    online = False

    def __init__(
        self, model: Path | None = None, *, executable: str = "piper", timeout: float = 120.0
    ):
        self.model = model if model is not None else configured_model()
        self.executable = executable
        self.timeout = timeout

    def check_available(self) -> tuple[str, Path]:
        """The CLI path and model, or :class:`EngineUnavailable` saying what is missing."""
        if self.model is None:
            raise EngineUnavailable(f"{self.name}: not available: no voice model configured")
        if not self.model.is_file():
            raise EngineUnavailable(f"{self.name}: not available: model {self.model} not found")
        binary = shutil.which(self.executable)
        if binary is None:
            raise EngineUnavailable(f"{self.name}: not available: {self.executable!r} not on PATH")
        return binary, self.model

    def cache_identity(self, *, voice: str, rate: int | None) -> Mapping[str, object]:
        model = str(self.model) if self.model else None
        size = self.model.stat().st_size if self.model and self.model.is_file() else None
        return {"model": model, "model_size": size, "length_scale": self._length_scale(rate)}

    @staticmethod
    def _length_scale(rate: int | None) -> float:
        return round(NATURAL_WPM / rate, 3) if rate else 1.0

    def synthesize(self, text: str, *, voice: str, rate: int | None) -> Synthesis:
        check_voice(voice)
        binary, model = self.check_available()
        with tempfile.TemporaryDirectory(prefix="loaxa-piper-") as tmp:
            out = Path(tmp) / "speech.wav"
            command = [
                binary, "--model", str(model), "--output_file", str(out),
                "--length_scale", str(self._length_scale(rate)),
            ]  # fmt: skip
            try:
                done = subprocess.run(
                    command, input=text.encode("utf-8"), capture_output=True, timeout=self.timeout
                )
            except subprocess.TimeoutExpired as exc:
                raise EngineError(f"{self.name}: timed out after {self.timeout:.0f}s") from exc
            if done.returncode != 0 or not out.is_file():
                detail = done.stderr.decode("utf-8", "replace").strip()[-200:]
                raise EngineError(f"{self.name}: failed (exit {done.returncode}): {detail}")
            return Synthesis(out.read_bytes(), "wav")
