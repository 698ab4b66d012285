"""Render an announcement: items -> one loudness-normalised, small, content-addressed file.

Pipeline per item: chime/outro synthesised in code, speech normalised (normalize_vi), split
at sentences and spoken by the TTS chain (cached), recordings decoded by ffmpeg; every item
is levelled so a quiet phone recording sits with TTS, pydub joins them, the programme is
measured and gained to −16 LUFS once (repeats share that gain), then encoded by ffmpeg.
The file is named by the sha256 of its bytes, which is what the MQTT media transfer and the
nodes' media caches key on.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pydub import AudioSegment

from broadcasts.audio import (
    SAMPLE_RATE,
    decode_synthesis,
    ffmpeg_decode,
    from_segment,
    silence,
    to_segment,
)
from broadcasts.chime import chime, outro_chime
from broadcasts.encode import CODECS, DEFAULT_BITRATE_KBPS, Codec, encode_pcm16
from broadcasts.items import (
    ChimeItem,
    Item,
    OutroItem,
    RecordingItem,
    SilenceItem,
    SpeechItem,
    parse_items,
)
from broadcasts.loudness import TARGET_LUFS, match_level, normalize_loudness
from broadcasts.normalize import normalize_vi
from broadcasts.render_cache import RenderCache, RenderEntry, file_sha256, render_key
from broadcasts.tts import (
    SpeechResult,
    SpeechSynthesizer,
    TtsCache,
    canonical_engine,
    default_cache_dir,
    split_sentences,
)
from broadcasts.tts.base import check_voice

log = logging.getLogger(__name__)

CHIME_BELOW_SPEECH_LU = 3.0
GAP_BETWEEN_CHUNKS_S = 0.15
GAP_BETWEEN_REPEATS_S = 1.5
MAX_REPEAT = 10


@dataclass(frozen=True)
class RenderedAudio:
    """A finished announcement file and how it was made."""

    path: Path  # out_dir / f"{sha256}.{ext}"
    sha256: str  # of the encoded file bytes
    size: int
    duration_s: float
    codec: str  # "mp3" or "opus"
    engine: str  # TTS engine actually used, or "none" when there was no speech
    fallback_reason: str | None


@dataclass
class _SpeechLog:
    """Engines used and fallback reasons across the speech items of one render."""

    engines: list[str]
    reasons: list[str]
    failed: list[str]

    def add(self, result: SpeechResult) -> None:
        if result.engine not in self.engines:
            self.engines.append(result.engine)
        if result.fallback_reason and result.fallback_reason not in self.reasons:
            self.reasons.append(result.fallback_reason)
        self.failed.extend(n for n in result.failed_engines if n not in self.failed)

    @property
    def engine(self) -> str:
        return "+".join(self.engines) or "none"

    @property
    def reason(self) -> str | None:
        return "; ".join(self.reasons) or None


# --------------------------------------------------------------------------- items -> audio


def _speech_audio(
    item: SpeechItem,
    synth: SpeechSynthesizer,
    speech_log: _SpeechLog,
    *,
    engine: str,
    voice: str,
    rate: int | None,
    lexicon: Mapping[str, str] | None,
) -> np.ndarray | None:
    chunks = split_sentences(normalize_vi(item.text, lexicon))
    if not chunks:
        log.warning("speech item has nothing to say after normalisation: %r", item.text[:80])
        return None
    result = synth.speak(chunks, engine=engine, voice=voice, rate=rate)
    speech_log.add(result)
    gap = silence(GAP_BETWEEN_CHUNKS_S)
    parts: list[np.ndarray] = []
    for synthesis in result.chunks:
        if parts:
            parts.append(gap)
        parts.append(decode_synthesis(synthesis))
    return match_level(np.concatenate(parts), TARGET_LUFS)


@lru_cache(maxsize=2)
def _levelled_chime(outro: bool) -> np.ndarray:
    """The chimes never change: level them once per process."""
    samples = outro_chime() if outro else chime()
    levelled = match_level(samples, TARGET_LUFS - CHIME_BELOW_SPEECH_LU)
    levelled.setflags(write=False)
    return levelled


def _item_audio(item: Item, synth: SpeechSynthesizer, speech_log: _SpeechLog, **speech: Any):
    if isinstance(item, ChimeItem | OutroItem):
        return _levelled_chime(isinstance(item, OutroItem))
    if isinstance(item, SilenceItem):
        return silence(item.seconds)
    if isinstance(item, RecordingItem):
        return match_level(ffmpeg_decode(item.path), TARGET_LUFS)
    return _speech_audio(item, synth, speech_log, **speech)


def _programme(items: Sequence[Item], synth: SpeechSynthesizer, speech_log: _SpeechLog, **speech):
    """One pass of the announcement, levelled, as a pydub segment."""
    joined = AudioSegment.empty()
    for item in items:
        samples = _item_audio(item, synth, speech_log, **speech)
        if samples is not None and samples.size:
            joined += to_segment(samples)
    if len(joined) == 0:
        raise ValueError("announcement has no audio (empty speech and no other items)")
    levelled = normalize_loudness(from_segment(joined), TARGET_LUFS)
    return to_segment(levelled)


def _repeat(segment: AudioSegment, times: int) -> AudioSegment:
    if times == 1:
        return segment
    gap = AudioSegment.silent(duration=GAP_BETWEEN_REPEATS_S * 1000, frame_rate=SAMPLE_RATE)
    return (segment + gap) * (times - 1) + segment


# --------------------------------------------------------------------------- output + cache


def _publish(pcm: bytes, out_dir: Path, codec: Codec, bitrate_kbps: int) -> tuple[Path, str, int]:
    """Encode into a temp file in ``out_dir``, then rename it to its sha256 name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ext = CODECS[codec][2]
    fd, tmp_name = tempfile.mkstemp(dir=out_dir, prefix=".render-", suffix=f".{ext}")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        encode_pcm16(pcm, tmp, codec=codec, bitrate_kbps=bitrate_kbps)
        digest = file_sha256(tmp)
        final = out_dir / f"{digest}.{ext}"
        os.replace(tmp, final)
        return final, digest, final.stat().st_size
    finally:
        tmp.unlink(missing_ok=True)


def _still_degraded(entry: RenderEntry, synth: SpeechSynthesizer) -> bool:
    """A fallback render stays valid while the engines that failed are still remembered down."""
    for name in entry.failed_engines:
        engine = synth.engines.get(name)
        if engine is not None and engine.online and synth.health.down_reason(name) is None:
            return False
    return True


def _reuse(entry: RenderEntry | None, out_dir: Path, synth: SpeechSynthesizer):
    if entry is None or not _still_degraded(entry, synth):
        return None
    target = out_dir / f"{entry.sha256}.{entry.ext}"
    if not (target.is_file() and target.stat().st_size == entry.size):
        source = Path(entry.path)
        if not (source.is_file() and source.stat().st_size == entry.size):
            return None
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".copy-", suffix=f".{entry.ext}")
        os.close(fd)
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    return RenderedAudio(
        target, entry.sha256, entry.size, entry.duration_s, entry.codec, entry.engine,
        entry.fallback_reason,
    )  # fmt: skip


def _key_payload(items: Sequence[Item], **options: Any) -> dict[str, Any]:
    described = []
    for item in items:
        data = item.model_dump(mode="json")
        if isinstance(item, RecordingItem):
            data["sha256"] = file_sha256(item.path)
        described.append(data)
    lexicon = options.pop("lexicon") or {}
    return {"items": described, "lexicon": sorted(lexicon.items()), **options}


# --------------------------------------------------------------------------- public API


def render_announcement(
    items: Sequence[Item | Mapping[str, Any]],
    out_dir: Path,
    *,
    repeat: int = 1,
    engine: str = "auto",
    voice: str = "vi",
    rate: int | None = None,
    lexicon: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
    codec: Codec = "mp3",
    bitrate_kbps: int = DEFAULT_BITRATE_KBPS,
    synthesizer: SpeechSynthesizer | None = None,
) -> RenderedAudio:
    """Render ``items`` (models or JSON dicts) ``repeat`` times into ``out_dir``.

    Identical input returns the cached file without synthesis or encoding. ``synthesizer``
    lets a long-lived process share engines, failure memory and a TTS cache (tests use it to
    count engine calls); by default one is built on ``cache_dir``.
    """
    parsed = parse_items(items)
    if not parsed:
        raise ValueError("an announcement needs at least one item")
    if not 1 <= repeat <= MAX_REPEAT:
        raise ValueError(f"repeat must be 1..{MAX_REPEAT}, got {repeat}")
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; choose one of {', '.join(CODECS)}")
    engine, voice = canonical_engine(engine), check_voice(voice)
    out_dir = Path(out_dir)
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    synth = synthesizer or SpeechSynthesizer(cache=TtsCache(cache_root))
    renders = RenderCache(cache_root)
    key = render_key(
        _key_payload(
            parsed,
            repeat=repeat,
            engine=engine,
            voice=voice,
            rate=rate,
            lexicon=lexicon,
            codec=codec,
            bitrate_kbps=bitrate_kbps,
            target_lufs=TARGET_LUFS,
        )  # fmt: skip
    )
    if (hit := _reuse(renders.get(key), out_dir, synth)) is not None:
        return hit

    speech_log = _SpeechLog([], [], [])
    once = _programme(
        parsed, synth, speech_log, engine=engine, voice=voice, rate=rate, lexicon=lexicon
    )
    full = _repeat(once, repeat)
    path, digest, size = _publish(full.raw_data, out_dir, codec, bitrate_kbps)
    duration = len(full.raw_data) / 2 / SAMPLE_RATE
    rendered = RenderedAudio(
        path, digest, size, round(duration, 3), codec, speech_log.engine, speech_log.reason
    )
    renders.put(
        key,
        RenderEntry(
            digest,
            CODECS[codec][2],
            size,
            rendered.duration_s,
            codec,
            rendered.engine,
            rendered.fallback_reason,
            tuple(speech_log.failed),
            str(path.resolve()),
        ),  # fmt: skip
    )
    return rendered


def render_text(text: str, out_dir: Path, *, chime: bool = True, **kw: Any) -> RenderedAudio:
    """The common case: intro chime, the text read aloud, outro chime."""
    items: list[Item] = [SpeechItem(text=text)]
    if chime:
        items = [ChimeItem(), *items, OutroItem()]
    return render_announcement(items, out_dir, **kw)
