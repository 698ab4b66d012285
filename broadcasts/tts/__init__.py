"""TTS engines behind one interface, a fallback chain, failure memory and a disk cache."""

from broadcasts.tts.base import VOICES, EngineError, EngineUnavailable, Synthesis, TtsEngine
from broadcasts.tts.cache import TtsCache, default_cache_dir
from broadcasts.tts.chain import (
    ENGINE_NAMES,
    SpeechResult,
    SpeechSynthesizer,
    canonical_engine,
    default_engines,
    engine_chain,
)
from broadcasts.tts.espeak import EspeakEngine
from broadcasts.tts.gtts_engine import GttsEngine
from broadcasts.tts.health import EngineHealth, default_health
from broadcasts.tts.piper import PiperEngine
from broadcasts.tts.split import split_sentences

__all__ = [
    "ENGINE_NAMES",
    "VOICES",
    "EngineError",
    "EngineHealth",
    "EngineUnavailable",
    "EspeakEngine",
    "GttsEngine",
    "PiperEngine",
    "SpeechResult",
    "SpeechSynthesizer",
    "Synthesis",
    "TtsCache",
    "TtsEngine",
    "canonical_engine",
    "default_cache_dir",
    "default_engines",
    "default_health",
    "engine_chain",
    "split_sentences",
]
