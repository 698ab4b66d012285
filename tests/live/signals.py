"""Test signals for live sessions, and where a signal is found in what a node heard."""

from __future__ import annotations

import json
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal

RATE = 16_000


def speechlike(seconds: float, seed: int = 7, rate: int = RATE) -> np.ndarray:
    """Band-limited noise with a syllable rhythm (3-6 Hz bursts): it correlates with
    itself at one lag only, as speech does, and survives a speech codec."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    noise = signal.sosfilt(signal.butter(4, [200, 3400], "bandpass", fs=rate, output="sos"),
                           rng.standard_normal(n))
    syllables = np.repeat(rng.uniform(0.2, 1.0, int(seconds * 5) + 1), rate // 5)[:n]
    envelope = signal.sosfilt(signal.butter(2, 8, fs=rate, output="sos"), syllables)
    out = noise * envelope
    return (0.5 * out / np.max(np.abs(out))).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        data = w.readframes(w.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32767


@dataclass(frozen=True)
class Heard:
    samples: np.ndarray
    started_at: float
    """Wall-clock time of the first sample, as the node's sink wrote it."""
    rate: int


def heard_live(sink_dir: Path, session_id: str) -> list[Heard]:
    """Every stream of a live session in a node's file sink, in order."""
    out = []
    for wav in sorted(sink_dir.glob(f"*live-{session_id}*.wav")):
        if not wav.with_suffix(".json").exists():
            continue  # opened, its first frame not yet due
        meta = json.loads(wav.with_suffix(".json").read_text())
        out.append(Heard(read_wav(wav), meta["started_at"], meta["sample_rate"]))
    return out


def locate(source: np.ndarray, heard: np.ndarray) -> tuple[int, float]:
    """Where ``source`` starts in ``heard`` (samples) and how well it matches there
    (normalised correlation, 1.0 = the same waveform)."""
    corr = signal.correlate(heard, source, mode="valid", method="fft")
    lag = int(np.argmax(corr))
    part = heard[lag:lag + len(source)]
    score = float(np.dot(part, source) / (np.linalg.norm(part) * np.linalg.norm(source) + 1e-9))
    return lag, score


def longest_silence_s(samples: np.ndarray, rate: int, window_s: float = 0.02) -> float:
    """The longest run of (near-)silent windows: a gap a listener would hear."""
    window = int(window_s * rate)
    usable = len(samples) // window * window
    rms = np.sqrt(np.mean(samples[:usable].reshape(-1, window) ** 2, axis=1))
    longest = run = 0
    for quiet in rms < 1e-3:
        run = run + 1 if quiet else 0
        longest = max(longest, run)
    return longest * window_s
