"""Announcement items: what the controller's API accepts as JSON.

A discriminated union on ``kind`` so ``[{"kind": "chime"}, {"kind": "speech", "text": "..."}]``
validates straight into typed items with clear errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

MAX_TEXT_CHARS = 20_000
MAX_SILENCE_S = 60.0


class _Item(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChimeItem(_Item):
    """The rising bell that asks for attention."""

    kind: Literal["chime"] = "chime"


class OutroItem(_Item):
    """The falling bell that closes an announcement."""

    kind: Literal["outro"] = "outro"


class SpeechItem(_Item):
    """Text read by TTS after Vietnamese normalisation."""

    kind: Literal["speech"] = "speech"
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


class RecordingItem(_Item):
    """An uploaded recording (see :mod:`broadcasts.uploads`), by its stored path."""

    kind: Literal["recording"] = "recording"
    path: Path


class SilenceItem(_Item):
    kind: Literal["silence"] = "silence"
    seconds: float = Field(gt=0, le=MAX_SILENCE_S)


Item = Annotated[
    ChimeItem | OutroItem | SpeechItem | RecordingItem | SilenceItem,
    Field(discriminator="kind"),
]
_ITEMS = TypeAdapter(list[Item])


def parse_items(raw: Iterable[Item | Mapping[str, Any]]) -> list[Item]:
    """Items from models or JSON-like dicts; raises pydantic.ValidationError if invalid."""
    return _ITEMS.validate_python([i.model_dump() if isinstance(i, BaseModel) else i for i in raw])
