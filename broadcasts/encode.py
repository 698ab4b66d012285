"""Encoding to the small formats nodes download over 3G, and decoding for edge file sinks.

Defaults: mono, 24 kHz, MP3 (libmp3lame) at 24 kbit/s, about 180 KB per minute. Opus at
24 kbit/s sounds better for the same size; MP3 is the default because every browser and
player in the field opens it. Metadata is stripped and bit-exact flags set so the same
samples give the same bytes (and the same sha256) on every machine with the same ffmpeg.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Literal

from broadcasts.audio import SAMPLE_RATE, AudioError

Codec = Literal["mp3", "opus"]
CODECS: dict[str, tuple[str, str, str]] = {
    # codec: (ffmpeg encoder, container format, file extension)
    "mp3": ("libmp3lame", "mp3", "mp3"),
    "opus": ("libopus", "ogg", "opus"),
}
DEFAULT_BITRATE_KBPS = 24
BITRATE_RANGE_KBPS = (16, 32)


def encode_pcm16(
    pcm: bytes,
    dst: Path,
    *,
    codec: Codec = "mp3",
    bitrate_kbps: int = DEFAULT_BITRATE_KBPS,
    rate: int = SAMPLE_RATE,
) -> None:
    """Encode mono 16-bit PCM to ``dst`` with ffmpeg (PCM through stdin, no temp WAV)."""
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; choose one of {', '.join(CODECS)}")
    low, high = BITRATE_RANGE_KBPS
    if not low <= bitrate_kbps <= high:
        raise ValueError(f"bitrate {bitrate_kbps} kbit/s outside {low}-{high}")
    encoder, container, _ = CODECS[codec]
    command = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0",
        "-c:a", encoder, "-b:a", f"{bitrate_kbps}k", "-ar", str(rate), "-ac", "1",
        "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
    ]  # fmt: skip
    # Encoder effort: LAME -q 7 ("fast, ok quality") and Opus complexity 5 are 2-3x faster
    # than the defaults (-q 3, complexity 10); at 24 kbit/s speech on horn loudspeakers the
    # difference is not what limits quality. Choose Opus when quality matters more.
    if codec == "opus":
        # Opus always decodes at 48 kHz; the stream records 24 kHz input and -cutoff keeps its
        # bandwidth to 12 kHz, i.e. what a 24 kHz file can hold.
        command += ["-application", "audio", "-vbr", "constrained", "-compression_level", "5"]
        command += ["-cutoff", "12000"]
    else:
        command += ["-compression_level", "7"]
    command += ["-f", container, str(dst)]
    done = subprocess.run(command, input=pcm, capture_output=True)
    if done.returncode != 0:
        raise AudioError(f"ffmpeg encode failed: {done.stderr.decode(errors='replace')[:300]}")


def decode_to_wav(src: Path, dst: Path, sample_rate: int = SAMPLE_RATE,
                  volume: int = 100) -> float:
    """Decode any audio to mono 16-bit WAV at ``dst`` atomically; return its duration.

    Edge file sinks and ALSA players want plain PCM; the temp file lives beside ``dst`` and is
    renamed into place, so a player never opens a half-written file. ``volume`` (0-100) is
    the node's playback volume, applied while decoding so playing needs no more work.
    """
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".wav")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        command = [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src),
            "-vn", "-ac", "1", "-ar", str(sample_rate), "-af", f"volume={volume / 100:.2f}",
            "-c:a", "pcm_s16le", "-f", "wav", str(tmp),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True)
        if done.returncode != 0:
            raise AudioError(f"cannot decode {src}: {done.stderr.decode(errors='replace')[:300]}")
        with wave.open(str(tmp), "rb") as handle:
            duration = handle.getnframes() / handle.getframerate()
        os.replace(tmp, dst)
        return duration
    finally:
        tmp.unlink(missing_ok=True)
