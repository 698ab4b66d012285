"""Split long text at sentence boundaries.

Engines behave better on short inputs (gTTS caps each request, espeak's prosody resets per
clause), and per-chunk caching means editing one sentence of a long bulletin re-synthesises
only that sentence.
"""

from __future__ import annotations

import re

DEFAULT_MAX_CHARS = 280

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
_CLAUSE_END = re.compile(r"(?<=[,:])\s+")


def _pack(pieces: list[str], max_chars: int) -> list[str]:
    """Greedily join consecutive pieces while they fit in ``max_chars``."""
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current} {piece}".strip()
        if current and len(candidate) > max_chars:
            chunks.append(current)
            current = piece
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks


def _split_long(sentence: str, max_chars: int) -> list[str]:
    """A sentence longer than the limit: split at commas, then at spaces."""
    if len(sentence) <= max_chars:
        return [sentence]
    out: list[str] = []
    for clause in _CLAUSE_END.split(sentence):
        if len(clause) <= max_chars:
            out.append(clause)
        else:
            out.extend(_pack(clause.split(), max_chars))
    return out


def split_sentences(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[str]:
    """Chunks of at most ``max_chars`` (unless one word is longer), in order, none empty."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        if sentence.strip():
            pieces.extend(_split_long(sentence.strip(), max_chars))
    return _pack(pieces, max_chars)
