"""The content pipeline: text -> normalised Vietnamese -> TTS -> chime + speech + outro ->
loudness-normalised, low-bitrate audio. Used by the controller and by edge nodes.

The names below are loaded when first used (PEP 562), not when the package is imported: a
node that only decodes a clip for its speaker (``broadcasts.encode``) must not pull in
rendering's scipy, pydub and gTTS, ≈ 85 MB resident that a Pi never gives back."""

from __future__ import annotations

from importlib import import_module
from typing import Any

#: Each exported name and the module that defines it.
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

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'broadcasts' has no attribute {name!r}")
    value = getattr(import_module(f"broadcasts.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
