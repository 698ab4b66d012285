"""A pleasant bell chime synthesised in code, so no binary asset ships with the project.

Each note is a struck bell: a few partials (one slightly inharmonic, which is what makes it
sound like a bell rather than an organ) with exponential decay and a soft 5 ms attack to
avoid clicks. Intro rises (C6-E6-G6 feel: "attention"), outro falls ("end of message").
"""

from __future__ import annotations

import numpy as np

from broadcasts.audio import SAMPLE_RATE

_PARTIALS: tuple[tuple[float, float, float], ...] = (
    # (frequency ratio, amplitude, decay per second)
    (1.0, 1.0, 2.2),
    (2.0, 0.45, 3.5),
    (2.76, 0.22, 5.0),
    (5.4, 0.08, 8.0),
)
INTRO_NOTES: tuple[float, ...] = (523.25, 659.25, 783.99)  # C5 E5 G5
OUTRO_NOTES: tuple[float, ...] = (783.99, 659.25, 523.25)
NOTE_SPACING_S = 0.34
TAIL_S = 1.5
PEAK = 0.5


def bell(frequency: float, seconds: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate), dtype=np.float64) / rate
    tone = np.zeros_like(t)
    for ratio, amplitude, decay in _PARTIALS:
        if frequency * ratio < rate / 2:
            tone += amplitude * np.exp(-decay * t) * np.sin(2 * np.pi * frequency * ratio * t)
    attack = min(len(t), round(0.005 * rate))
    tone[:attack] *= np.linspace(0.0, 1.0, attack)
    return tone


def chime(notes: tuple[float, ...] = INTRO_NOTES, rate: int = SAMPLE_RATE) -> np.ndarray:
    """The notes struck in turn, overlapping as real bells do, peak-normalised."""
    length = round(((len(notes) - 1) * NOTE_SPACING_S + TAIL_S) * rate)
    out = np.zeros(length, dtype=np.float64)
    for i, frequency in enumerate(notes):
        start = round(i * NOTE_SPACING_S * rate)
        note = bell(frequency, TAIL_S, rate)[: length - start]
        out[start : start + len(note)] += note
    fade = round(0.05 * rate)
    out[-fade:] *= np.linspace(1.0, 0.0, fade)
    return (out * (PEAK / np.max(np.abs(out)))).astype(np.float32)


def outro_chime(rate: int = SAMPLE_RATE) -> np.ndarray:
    return chime(OUTRO_NOTES, rate)
