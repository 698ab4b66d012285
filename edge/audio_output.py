"""Sound output adapters: how a prepared clip reaches a speaker (or a file).

``prepare`` decodes the clip to PCM WAV ahead of the deadline (the slow part), so that
``play`` at the deadline only has to open the device: that is what lets every node of a
zone start the same item within milliseconds of one another.

- :class:`FileSink` writes what it "plays" to a WAV file and waits out its duration:
  tests and the simulator use it, and a preempted clip is cut where it stopped.
- :class:`AplaySink` plays through ALSA (``aplay``) on a Pi's sound card.
- :class:`FfplaySink` plays on any desktop with ffplay.
"""

from __future__ import annotations

import logging
import re
import subprocess
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class PreparedClip:
    wav: Path
    duration_s: float


class AudioOutput(Protocol):
    def prepare(self, media: Path, volume: int, work_dir: Path) -> PreparedClip: ...

    def play(self, clip: PreparedClip, label: str, stop: threading.Event) -> float:
        """Play until done or ``stop`` is set; return the seconds actually played."""
        ...


def wav_duration(wav: Path) -> float:
    with wave.open(str(wav), "rb") as w:
        return w.getnframes() / w.getframerate()


def write_head(src: Path, dst: Path, seconds: float) -> None:
    """Write the first ``seconds`` of WAV ``src`` to ``dst`` (may be ``src`` itself): what a
    preempted playback really played."""
    with wave.open(str(src), "rb") as r:
        params = r.getparams()
        frames = r.readframes(int(seconds * r.getframerate()))
    with wave.open(str(dst), "wb") as w:
        w.setparams(params)
        w.writeframes(frames)


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", label)[:80]


class _DecodingOutput:
    def prepare(self, media: Path, volume: int, work_dir: Path) -> PreparedClip:
        work_dir.mkdir(parents=True, exist_ok=True)
        wav = work_dir / f"{media.stem}-v{volume}.wav"
        if wav.exists():
            return PreparedClip(wav, wav_duration(wav))
        from broadcasts import decode_to_wav  # the content pipeline's: loaded when first used

        return PreparedClip(wav, decode_to_wav(media, wav, volume=volume))


class FileSink(_DecodingOutput):
    def __init__(self, directory: Path, realtime: bool = True) -> None:
        self.directory = directory
        self.realtime = realtime
        directory.mkdir(parents=True, exist_ok=True)

    def play(self, clip: PreparedClip, label: str, stop: threading.Event) -> float:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        out = self.directory / f"{stamp}-{_safe(label)}.wav"
        self.place(clip, out)
        if not self.realtime:
            return clip.duration_s
        started = time.monotonic()
        stopped = stop.wait(clip.duration_s)
        played = min(time.monotonic() - started, clip.duration_s)
        if stopped:
            self.cut(clip, out, played)
        return played

    def place(self, clip: PreparedClip, out: Path) -> None:
        """Put what is played into the sink folder."""
        out.write_bytes(clip.wav.read_bytes())

    def cut(self, clip: PreparedClip, out: Path, played: float) -> None:
        """A stopped clip keeps only what really played."""
        write_head(out, out, played)


class _ProcessOutput(_DecodingOutput):
    def command(self, clip: PreparedClip) -> list[str]:
        raise NotImplementedError

    def play(self, clip: PreparedClip, label: str, stop: threading.Event) -> float:
        started = time.monotonic()
        proc = subprocess.Popen(self.command(clip), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        while proc.poll() is None:
            if stop.wait(0.05):
                proc.terminate()
                proc.wait(timeout=5)
                break
        if proc.returncode not in (0, -15) and not stop.is_set():
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"player exited with {proc.returncode}: {err[:300]}")
        return time.monotonic() - started


class AplaySink(_ProcessOutput):
    def __init__(self, device: str = "default") -> None:
        self.device = device

    def command(self, clip: PreparedClip) -> list[str]:
        return ["aplay", "-q", "-D", self.device, str(clip.wav)]


class FfplaySink(_ProcessOutput):
    def command(self, clip: PreparedClip) -> list[str]:
        return ["ffplay", "-nodisp", "-autoexit", "-loglevel", "error", str(clip.wav)]


def make_output(kind: str, file_dir: Path, device: str, realtime: bool) -> AudioOutput:
    if kind == "file":
        return FileSink(file_dir, realtime)
    if kind == "alsa":
        return AplaySink(device)
    return FfplaySink()
