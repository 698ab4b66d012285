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

import contextlib
import json
import logging
import os
import re
import subprocess
import time
import wave
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class PreparedClip:
    wav: Path
    duration_s: float


class Playing(Protocol):
    """A clip that is playing. The scheduler polls it from the loop; nothing blocks."""

    def done(self) -> bool:
        """Has it ended by itself?"""
        ...

    def remaining(self) -> float | None:
        """Seconds until it ends, if known (when the scheduler should look again)."""
        ...

    def stop(self) -> float:
        """End it now; return the seconds actually played."""
        ...

    def played(self) -> float:
        ...

    def error(self) -> str | None:
        """Why it failed, once done; None if it played."""
        ...


class AudioOutput(Protocol):
    def prepare(self, media: Path, volume: int, work_dir: Path) -> PreparedClip:
        """Decode ahead of the deadline (slow: runs in the loop's worker pool)."""
        ...

    def ready(self, media: Path, volume: int, work_dir: Path) -> PreparedClip | None:
        """The clip if it is already decoded (quick, on the loop); None to prepare it."""
        ...

    def prepare_key(self, media: Path, volume: int, work_dir: Path) -> Hashable:
        """What a decode produces: two prepares with the same key make the same clip,
        so the second waits for the first instead of running again."""
        ...

    def start(self, clip: PreparedClip, label: str) -> Playing:
        """Start playing now and return at once (on the deadline: must be quick)."""
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
    def prepare_key(self, media: Path, volume: int, work_dir: Path) -> Hashable:
        return work_dir / f"{media.stem}-v{volume}.wav"

    def ready(self, media: Path, volume: int, work_dir: Path) -> PreparedClip | None:
        wav = work_dir / f"{media.stem}-v{volume}.wav"
        return PreparedClip(wav, wav_duration(wav)) if wav.exists() else None

    def prepare(self, media: Path, volume: int, work_dir: Path) -> PreparedClip:
        work_dir.mkdir(parents=True, exist_ok=True)
        if clip := self.ready(media, volume, work_dir):
            return clip
        wav = work_dir / f"{media.stem}-v{volume}.wav"
        from broadcasts.encode import decode_to_wav  # loaded when first used, without rendering

        return PreparedClip(wav, decode_to_wav(media, wav, volume=volume))


class FileSink(_DecodingOutput):
    def __init__(self, directory: Path, realtime: bool = True) -> None:
        self.directory = directory
        self.realtime = realtime
        directory.mkdir(parents=True, exist_ok=True)

    def start(self, clip: PreparedClip, label: str) -> Playing:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        out = self.directory / f"{stamp}-{_safe(label)}.wav"
        self.place(clip, out)
        return _FilePlaying(self, clip, out)

    def place(self, clip: PreparedClip, out: Path) -> None:
        """Put what is played into the sink folder."""
        out.write_bytes(clip.wav.read_bytes())

    def cut(self, clip: PreparedClip, out: Path, played: float) -> None:
        """A stopped clip keeps only what really played."""
        write_head(out, out, played)


class _FilePlaying:
    """A clip "playing" into a file: written at the start, cut if stopped early."""

    def __init__(self, sink: FileSink, clip: PreparedClip, out: Path) -> None:
        self.sink, self.clip, self.out = sink, clip, out
        self.started = time.monotonic()
        self._stopped_at: float | None = None

    def played(self) -> float:
        if not self.sink.realtime:
            return self.clip.duration_s
        end = self._stopped_at if self._stopped_at is not None else time.monotonic()
        return min(end - self.started, self.clip.duration_s)

    def remaining(self) -> float | None:
        return max(0.0, self.clip.duration_s - self.played())

    def done(self) -> bool:
        return self._stopped_at is not None or self.played() >= self.clip.duration_s

    def stop(self) -> float:
        if self._stopped_at is None and not self.done():
            self._stopped_at = time.monotonic()
            self.sink.cut(self.clip, self.out, self.played())
        return self.played()

    def error(self) -> str | None:
        return None


class _ProcessOutput(_DecodingOutput):
    def command(self, clip: PreparedClip) -> list[str]:
        raise NotImplementedError

    def start(self, clip: PreparedClip, label: str) -> Playing:
        proc = subprocess.Popen(self.command(clip), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        return _ProcessPlaying(proc, clip)


class _ProcessPlaying:
    """A player process (aplay, ffplay); the scheduler polls it."""

    POLL_S = 0.1

    def __init__(self, proc: subprocess.Popen, clip: PreparedClip) -> None:
        self.proc, self.clip = proc, clip
        self.started = time.monotonic()
        self._stopped = False
        self._ended_at: float | None = None

    def done(self) -> bool:
        if self.proc.poll() is not None and self._ended_at is None:
            self._ended_at = time.monotonic()
        return self._ended_at is not None

    def remaining(self) -> float | None:
        return self.POLL_S

    def played(self) -> float:
        end = self._ended_at if self._ended_at is not None else time.monotonic()
        return end - self.started

    def stop(self) -> float:
        self._stopped = True
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.done()
        return self.played()

    def error(self) -> str | None:
        if self._stopped or self.proc.returncode in (0, -15, None):
            return None
        err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
        return f"player exited with {self.proc.returncode}: {err[:300]}"


class AplaySink(_ProcessOutput):
    def __init__(self, device: str = "default") -> None:
        self.device = device

    def command(self, clip: PreparedClip) -> list[str]:
        return ["aplay", "-q", "-D", self.device, str(clip.wav)]


class FfplaySink(_ProcessOutput):
    def command(self, clip: PreparedClip) -> list[str]:
        return ["ffplay", "-nodisp", "-autoexit", "-loglevel", "error", str(clip.wav)]


class LiveStream(Protocol):
    """A live session's sound, written frame by frame at its play time (edge/live.py)."""

    def write(self, pcm: bytes) -> None:
        """Queue 16-bit mono PCM to be heard right after what was written before."""
        ...

    def close(self, cut: bool = False) -> None:
        """End the stream; ``cut``: at once, dropping what the device still holds (an
        emergency takes over), else after it has played out."""
        ...


UNDERRUN_S = 0.25
"""A file stream models a sound card with this much buffer: PCM written later than that
after the end of what it holds leaves a gap of silence (an underrun), as a device would."""


class FileLiveStream:
    """A live session "played" into a WAV file that grows as frames are written, with a
    JSON beside it saying the wall-clock time its first sample was heard (what tests and
    the live benchmark compare between nodes and with the source)."""

    def __init__(self, path: Path, sample_rate: int) -> None:
        self.path, self.rate = path, sample_rate
        self._wav = wave.open(str(path), "wb")  # noqa: SIM115 (open for the session)
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)
        self._started: float | None = None
        self._written = 0

    def write(self, pcm: bytes) -> None:
        now = time.monotonic()
        if self._started is None:
            self._started = now
            meta = {"started_at": time.time(), "sample_rate": self.rate}
            self.path.with_suffix(".json").write_text(json.dumps(meta))
        due = int((now - self._started) * self.rate)
        if due - self._written > UNDERRUN_S * self.rate:
            gap = due - self._written
            self._wav.writeframes(b"\0\0" * gap)
            self._written += gap
        self._wav.writeframes(pcm)
        self._written += len(pcm) // 2

    def close(self, cut: bool = False) -> None:
        self._wav.close()
        if cut and self._started is not None:
            heard = (time.monotonic() - self._started)
            if heard * self.rate < self._written:
                write_head(self.path, self.path, heard)  # what a device would have played


class PipeLiveStream:
    """A live session piped as raw PCM into a player process (aplay, ffplay). Writes never
    block the loop: a device that falls behind loses the frame (counted) instead."""

    def __init__(self, command: list[str]) -> None:
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert self.proc.stdin is not None
        os.set_blocking(self.proc.stdin.fileno(), False)
        self.dropped = 0

    def write(self, pcm: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            os.write(self.proc.stdin.fileno(), pcm)
        except (BlockingIOError, BrokenPipeError):
            self.dropped += 1

    def close(self, cut: bool = False) -> None:
        """Never waits (on the loop): a cut stream's player is terminated, otherwise it
        plays out what it holds and exits on end of input."""
        if self.proc.stdin:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        if cut:
            self.proc.terminate()


def open_live_stream(output: object, label: str, sample_rate: int) -> LiveStream:
    """The live stream of an output: a growing WAV for a file sink, a pipe into aplay or
    ffplay otherwise."""
    if isinstance(output, FileSink):
        stamp = time.strftime("%Y%m%dT%H%M%S")
        return FileLiveStream(output.directory / f"{stamp}-{_safe(label)}.wav", sample_rate)
    if isinstance(output, AplaySink):
        return PipeLiveStream(["aplay", "-q", "-D", output.device, "-t", "raw", "-f",
                               "S16_LE", "-c", "1", "-r", str(sample_rate)])
    return PipeLiveStream(["ffplay", "-nodisp", "-loglevel", "error", "-f", "s16le",
                           "-ar", str(sample_rate), "-ch_layout", "mono", "-i", "-"])


def make_output(kind: str, file_dir: Path, device: str, realtime: bool) -> AudioOutput:
    if kind == "file":
        return FileSink(file_dir, realtime)
    if kind == "alsa":
        return AplaySink(device)
    return FfplaySink()
