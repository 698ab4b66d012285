"""Fixtures for the content pipeline tests: real ffmpeg and espeak-ng, private caches."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from content_helpers import CountingEngine, ffmpeg

from broadcasts.tts import EngineHealth, EspeakEngine, GttsEngine, SpeechSynthesizer, TtsCache


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """No test writes to the user's cache; no test talks to a proxy."""
    monkeypatch.setenv("LOAXA_CACHE_DIR", str(tmp_path_factory.mktemp("default-cache")))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("LOAXA_PIPER_MODEL", raising=False)


@pytest.fixture
def offline_gtts(monkeypatch: pytest.MonkeyPatch) -> GttsEngine:
    """A real gTTS engine whose HTTP goes to a closed local port: refused at once."""
    import gtts.tts

    monkeypatch.setattr(
        gtts.tts, "_translate_url", lambda tld="com", path="": f"http://127.0.0.1:9/{path}"
    )
    return GttsEngine(timeout=2.0)


@pytest.fixture
def make_synth(tmp_path: Path) -> Callable[..., tuple[SpeechSynthesizer, dict]]:
    """A synthesizer with counting engines, its own cache and failure memory."""

    def build(gtts_engine=None, cache: bool = True, health: EngineHealth | None = None):
        engines = {"espeak-ng": CountingEngine(EspeakEngine())}
        if gtts_engine is not None:
            engines["gtts"] = CountingEngine(gtts_engine)
        synth = SpeechSynthesizer(
            engines, TtsCache(tmp_path / "tts-cache") if cache else None, health or EngineHealth()
        )
        return synth, engines

    return build


@pytest.fixture
def spoken_mp3(tmp_path: Path) -> Path:
    """A real 'uploaded' recording: espeak-ng speech at a low level, encoded to MP3 by ffmpeg."""
    wav = tmp_path / "rec.wav"
    subprocess.run(
        ["espeak-ng", "-v", "vi", "-w", str(wav), "Đây là bản ghi âm của trưởng thôn."],
        check=True,
    )
    mp3 = tmp_path / "upload.mp3"
    ffmpeg("-i", str(wav), "-af", "volume=-14dB", "-ar", "44100", "-ac", "2", "-b:a", "96k",
           str(mp3))  # fmt: skip
    return mp3
