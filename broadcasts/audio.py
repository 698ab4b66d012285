"""Decoding and sample-format helpers shared by the assembler, loudness and uploads.

Everything inside the pipeline is mono float32 at :data:`SAMPLE_RATE`; conversion happens
once at the edges (engine bytes in, PCM out to the encoder). WAV from espeak-ng/Piper is
parsed in-process (a subprocess per sentence would cost more than the synthesis); anything
else goes through ffmpeg, whose resampler is better than pydub's linear one.
"""

from __future__ import annotations

import math
import struct
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # loaded where used: a node decoding a clip needs neither (broadcasts/__init__)
    from pydub import AudioSegment

    from broadcasts.tts.base import Synthesis

SAMPLE_RATE = 24_000


class AudioError(RuntimeError):
    """Audio could not be decoded or encoded."""


def _riff_chunks(data: bytes):
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, offset)
        body = offset + 8
        yield chunk_id, body, min(size, len(data) - body)
        offset = body + size + (size & 1)


def parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Mono float32 samples and rate from 16-bit PCM WAV bytes.

    espeak-ng streaming to stdout writes 0x7FFFFFFF as the data size, so sizes are clamped to
    what is actually there rather than trusted.
    """
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("not a WAV file")
    rate = channels = bits = None
    for chunk_id, body, size in _riff_chunks(data):
        if chunk_id == b"fmt ":
            _fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
        elif chunk_id == b"data":
            if rate is None or bits != 16:
                raise AudioError(f"unsupported WAV (bits={bits})")
            usable = size - size % (2 * channels)
            samples = np.frombuffer(data, dtype="<i2", count=usable // 2, offset=body)
            mono = samples.reshape(-1, channels).mean(axis=1) if channels > 1 else samples
            return mono.astype(np.float32) / 32768.0, rate
    raise AudioError("WAV has no data chunk")


def resample(samples: np.ndarray, source_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    if source_rate == target_rate or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    factor = math.gcd(source_rate, target_rate)
    out = resample_poly(samples, target_rate // factor, source_rate // factor)
    return out.astype(np.float32)


def ffmpeg_decode(source: Path | bytes, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode any file (or bytes) ffmpeg reads into mono float32 at ``rate``."""
    source_arg = "pipe:0" if isinstance(source, bytes) else str(source)
    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", source_arg,
        "-vn", "-ac", "1", "-ar", str(rate), "-f", "f32le", "pipe:1",
    ]  # fmt: skip
    if isinstance(source, bytes):
        command.remove("-nostdin")
    done = subprocess.run(
        command, input=source if isinstance(source, bytes) else None, capture_output=True
    )
    if done.returncode != 0:
        raise AudioError(f"ffmpeg could not decode: {done.stderr.decode(errors='replace')[:300]}")
    return np.frombuffer(done.stdout, dtype="<f4").astype(np.float32)


def decode_synthesis(synthesis: Synthesis, rate: int = SAMPLE_RATE) -> np.ndarray:
    if synthesis.format == "wav":
        samples, source_rate = parse_wav(synthesis.data)
        return resample(samples, source_rate, rate)
    return ffmpeg_decode(synthesis.data, rate)


def silence(seconds: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    return np.zeros(max(0, round(seconds * rate)), dtype=np.float32)


def to_pcm16(samples: np.ndarray) -> bytes:
    clipped = np.clip(samples, -1.0, 32767 / 32768)
    return (clipped * 32768.0).astype("<i2").tobytes()


def to_segment(samples: np.ndarray, rate: int = SAMPLE_RATE) -> AudioSegment:
    """pydub segment (16-bit mono) for assembly."""
    from pydub import AudioSegment

    return AudioSegment(data=to_pcm16(samples), sample_width=2, frame_rate=rate, channels=1)


def from_segment(segment: AudioSegment) -> np.ndarray:
    raw = np.frombuffer(segment.raw_data, dtype="<i2")
    return raw.astype(np.float32) / 32768.0
