"""The fallback chain: try engines in order, record which one spoke and why others did not.

"auto" is gTTS (best voice, online), then Piper when a model is configured, then espeak-ng
(always available offline). Each chain ends with espeak-ng so an announcement is never lost
to a missing network. A chunk list is spoken by ONE engine: mixing voices mid-announcement
sounds broken, so if an engine fails on any chunk the whole text moves to the next engine.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from broadcasts.tts.base import EngineError, Synthesis, TtsEngine, check_voice
from broadcasts.tts.cache import TtsCache
from broadcasts.tts.espeak import EspeakEngine
from broadcasts.tts.gtts_engine import GttsEngine
from broadcasts.tts.health import EngineHealth, default_health
from broadcasts.tts.piper import PiperEngine

log = logging.getLogger(__name__)

ENGINE_NAMES: tuple[str, ...] = ("auto", "gtts", "piper", "espeak-ng")
_ALIASES = {"espeak": "espeak-ng", "espeak_ng": "espeak-ng", "google": "gtts"}
OFFLINE_ENGINE = "espeak-ng"


def canonical_engine(engine: str) -> str:
    name = _ALIASES.get(engine.strip().lower(), engine.strip().lower())
    if name not in ENGINE_NAMES:
        raise ValueError(f"unknown TTS engine {engine!r}; choose one of {', '.join(ENGINE_NAMES)}")
    return name


def default_engines() -> dict[str, TtsEngine]:
    return {"gtts": GttsEngine(), "piper": PiperEngine(), "espeak-ng": EspeakEngine()}


def engine_chain(engine: str, engines: Mapping[str, TtsEngine]) -> list[str]:
    """Engine names to try, in order, for a requested engine."""
    name = canonical_engine(engine)
    if name == "auto":
        piper = engines.get("piper")
        has_model = isinstance(piper, PiperEngine) and piper.model is not None
        order = ["gtts", "piper", OFFLINE_ENGINE] if has_model else ["gtts", OFFLINE_ENGINE]
    else:
        order = [name] if name == OFFLINE_ENGINE else [name, OFFLINE_ENGINE]
    return [n for n in order if n in engines]


@dataclass(frozen=True)
class SpeechResult:
    """Speech for a list of chunks, and the story of how it was made."""

    chunks: tuple[Synthesis, ...]
    engine: str
    fallback_reason: str | None
    failed_engines: tuple[str, ...]
    synthesized: int
    cached: int


class SpeechSynthesizer:
    """Engines + cache + failure memory. One per process is typical; tests build their own."""

    def __init__(
        self,
        engines: Mapping[str, TtsEngine] | None = None,
        cache: TtsCache | None = None,
        health: EngineHealth | None = None,
        workers: int | None = None,
    ):
        self.engines = dict(engines) if engines is not None else default_engines()
        self.cache = cache
        self.health = health if health is not None else default_health
        self.workers = workers or max(1, os.cpu_count() or 1)

    def _keys(self, engine: TtsEngine, chunks: Sequence[str], voice: str, rate: int | None):
        identity = engine.cache_identity(voice=voice, rate=rate)
        return [TtsCache.key(engine.name, identity, chunk) for chunk in chunks]

    def _cached(self, keys: Sequence[str]) -> list[Synthesis | None]:
        if self.cache is None:
            return [None] * len(keys)
        return [self.cache.get(key) for key in keys]

    def _run(
        self, engine: TtsEngine, chunks: Sequence[str], voice: str, rate: int | None
    ) -> tuple[list[Synthesis], int, int]:
        """All chunks with one engine: cache first, the rest synthesised in parallel."""
        keys = self._keys(engine, chunks, voice, rate)
        found = self._cached(keys)
        missing = [i for i, hit in enumerate(found) if hit is None]
        if missing:
            if (reason := self.health.down_reason(engine.name)) is not None:
                raise EngineError(f"{engine.name}: {reason}")

            def speak(i: int) -> Synthesis:
                return engine.synthesize(chunks[i], voice=voice, rate=rate)

            workers = min(self.workers, len(missing))
            if workers == 1:
                fresh = [speak(i) for i in missing]
            else:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    fresh = list(pool.map(speak, missing))
            for i, synthesis in zip(missing, fresh, strict=True):
                found[i] = synthesis
                if self.cache is not None:
                    self.cache.put(keys[i], synthesis)
        done = [s for s in found if s is not None]
        return done, len(missing), len(chunks) - len(missing)

    def speak(
        self,
        chunks: Sequence[str],
        *,
        engine: str = "auto",
        voice: str = "vi",
        rate: int | None = None,
    ) -> SpeechResult:
        """Speak already-normalised chunks with the first engine of the chain that can."""
        check_voice(voice)
        reasons: list[str] = []
        failed: list[str] = []
        for name in engine_chain(engine, self.engines):
            candidate = self.engines[name]
            try:
                done, made, hits = self._run(candidate, chunks, voice, rate)
            except EngineError as exc:
                reason = str(exc) if str(exc).startswith(f"{name}:") else f"{name}: {exc}"
                reasons.append(reason)
                failed.append(name)
                if candidate.online and "skipped" not in reason:
                    self.health.mark_failed(name, reason.removeprefix(f"{name}: "))
                continue
            if made and candidate.online:
                self.health.mark_ok(name)
            fallback_reason = "; ".join(reasons) or None
            if fallback_reason:
                log.warning("TTS used %s instead of %s: %s", name, failed[0], fallback_reason)
            return SpeechResult(tuple(done), name, fallback_reason, tuple(failed), made, hits)
        raise EngineError("no TTS engine could speak: " + "; ".join(reasons))
