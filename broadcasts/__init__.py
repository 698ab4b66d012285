"""The content pipeline: text -> normalised Vietnamese -> TTS -> chime + speech + outro ->
loudness-normalised, low-bitrate audio. Used by the controller and by edge nodes."""

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
