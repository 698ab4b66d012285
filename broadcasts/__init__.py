"""The content pipeline: text -> normalised Vietnamese -> TTS -> chime + speech + outro ->
loudness-normalised, low-bitrate audio. Used by the controller and by edge nodes.

The names below are loaded when first used (PEP 562), not when the package is imported: a
node that only decodes a clip for its speaker (``broadcasts.encode``) must not pull in
rendering's scipy, pydub and gTTS, ≈ 85 MB resident that a Pi never gives back."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from broadcasts.assemble import RenderedAudio, render_announcement, render_text
    from broadcasts.encode import decode_to_wav
    from broadcasts.items import (
        ChimeItem,
        Item,
        OutroItem,
        RecordingItem,
        SilenceItem,
        SpeechItem,
        parse_items,
    )
    from broadcasts.loudness import measure_lufs
    from broadcasts.normalize import normalize_vi

_WHERE = {
    "RenderedAudio": "assemble",
    "render_announcement": "assemble",
    "render_text": "assemble",
    "decode_to_wav": "encode",
    "ChimeItem": "items",
    "Item": "items",
    "OutroItem": "items",
    "RecordingItem": "items",
    "SilenceItem": "items",
    "SpeechItem": "items",
    "parse_items": "items",
    "measure_lufs": "loudness",
    "normalize_vi": "normalize",
}

__all__ = [
    "ChimeItem",
    "Item",
    "OutroItem",
    "RecordingItem",
    "RenderedAudio",
    "SilenceItem",
    "SpeechItem",
    "decode_to_wav",
    "measure_lufs",
    "normalize_vi",
    "parse_items",
    "render_announcement",
    "render_text",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'broadcasts' has no attribute {name!r}")
    value = getattr(import_module(f"broadcasts.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
