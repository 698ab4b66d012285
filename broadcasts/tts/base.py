"""The one interface every TTS engine implements, and the errors the fallback chain reads.

Engines return encoded bytes (WAV or MP3) rather than samples so the disk cache can store
exactly what the engine produced and decoding stays in one place (:mod:`broadcasts.audio`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

AudioFormat = Literal["wav", "mp3"]

#: Voices the project offers; espeak-ng has all three, gTTS has one Vietnamese voice.
VOICES: tuple[str, ...] = ("vi", "vi-vn-x-central", "vi-vn-x-south")


@dataclass(frozen=True)
class Synthesis:
    """Encoded audio for one chunk of text, as the engine produced it."""

    data: bytes
    format: AudioFormat


class EngineError(RuntimeError):
    """The engine tried and failed (network down, bad output, crash).

    The message is short and human-readable: it becomes the fallback reason shown to staff.
    """


class EngineUnavailable(EngineError):
    """The engine cannot run here at all (missing binary, no voice model configured)."""


@runtime_checkable
class TtsEngine(Protocol):
    """Text (already normalised) to speech."""

    name: str
    #: True for engines that need the network; their failures are remembered for a while.
    online: bool

    def synthesize(self, text: str, *, voice: str, rate: int | None) -> Synthesis:
        """Speak ``text``; raise :class:`EngineError` on failure."""
        ...

    def cache_identity(self, *, voice: str, rate: int | None) -> Mapping[str, object]:
        """Every parameter that changes this engine's audio, for the cache key."""
        ...


def check_voice(voice: str) -> str:
    """Reject a voice name early, with the list, instead of letting an engine guess."""
    if voice not in VOICES:
        raise ValueError(f"unknown voice {voice!r}; choose one of {', '.join(VOICES)}")
    return voice
