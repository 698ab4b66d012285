"""The controller's side of the content pipeline: render items to stored audio.

One :class:`ContentRenderer` per controller shares the TTS engines, their failure memory
and the speech cache (under the data folder), and reads the commune's own words (the
lexicon) from the database, so staff can teach it a place name without a code change.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcasts import RenderedAudio, normalize_vi, render_announcement
from broadcasts.tts import SpeechSynthesizer, TtsCache
from controller import scope
from controller.media_store import MediaStore
from controller.models import LexiconEntry, Upload

log = logging.getLogger(__name__)


class ContentError(ValueError):
    """Content that cannot be rendered (4xx), e.g. an unknown upload. ``message`` says
    it to people when the reason is one they can fix (None: the API's general words)."""

    def __init__(self, detail: str, message: str | None = None) -> None:
        super().__init__(detail)
        self.message = message


NO_WORDS = ("speech: nothing to read aloud",
            "Nội dung không có chữ nào để đọc: hãy viết nội dung hoặc chọn bản ghi âm.")


def reading(session: Session, commune: str, text: str) -> str:
    """The words the speaker will really say for ``text``: the same normaliser and the
    commune's lexicon the renderer uses, so staff can correct a reading before it airs."""
    return normalize_vi(text, lexicon(session, commune))


def has_words(spoken: str) -> bool:
    return any(ch.isalpha() for ch in spoken)


def check_words(session: Session, commune: str, items: Sequence[dict]) -> None:
    """Refuse speech that says nothing (only spaces, dots or symbols): otherwise a
    preview or an announcement is made of chimes and silence without a word."""
    for item in items:
        if item.get("kind") == "speech" and not has_words(
                reading(session, commune, str(item.get("text") or ""))):
            raise ContentError(*NO_WORDS)


def text_items(text: str) -> list[dict[str, Any]]:
    """Plain text: intro chime, the text read aloud, outro chime."""
    return [{"kind": "chime"}, {"kind": "speech", "text": text}, {"kind": "outro"}]


def lexicon(session: Session, commune: str) -> dict[str, str]:
    return {e.term: e.reading for e in
            session.scalars(select(LexiconEntry).where(LexiconEntry.commune == commune))}


def lexicon_entries(session: Session, commune: str) -> list[LexiconEntry]:
    """The commune's own words, alphabetical (the page lists and edits them)."""
    return list(session.scalars(select(LexiconEntry).where(LexiconEntry.commune == commune)
                                .order_by(LexiconEntry.term)))


def resolve_uploads(session: Session, items: Sequence[dict], store: MediaStore) -> list[dict]:
    """API items name uploads by sha256; the pipeline wants the stored file's path."""
    resolved = []
    for item in items:
        if item.get("kind") == "recording":
            upload = session.scalar(select(Upload).where(Upload.sha256 == item.get("upload")))
            if upload is None:
                raise ContentError(f"items: unknown upload {item.get('upload')!r}")
            item = {"kind": "recording", "path": str(store.path(upload.sha256, upload.format))}
        resolved.append(item)
    return resolved


class ContentRenderer:
    def __init__(self, store: MediaStore, cache_dir: Path, commune: str) -> None:
        self.store, self.cache_dir, self.commune = store, cache_dir, commune
        self.synth = SpeechSynthesizer(cache=TtsCache(cache_dir / "tts"))

    def render(self, session: Session, items: Sequence[dict], *, repeat: int = 1,
               engine: str = "auto", voice: str = "vi") -> tuple[RenderedAudio, dict]:
        """Render and keep the result in the media store; return it and its DB fields."""
        commune = scope.commune_of(session) or self.commune  # a commune's own words
        check_words(session, commune, items)
        pipeline_items = resolve_uploads(session, items, self.store)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                audio = render_announcement(
                    pipeline_items, Path(tmp), repeat=repeat, engine=engine, voice=voice,
                    lexicon=lexicon(session, commune), cache_dir=self.cache_dir,
                    synthesizer=self.synth)
            except ValueError as exc:
                raise ContentError(str(exc)) from None
            sha, size = self.store.add(audio.path, audio.codec)
        if audio.fallback_reason:
            log.warning("TTS fell back to %s: %s", audio.engine, audio.fallback_reason)
        fields = {"media_sha256": sha, "media_size": size, "media_codec": audio.codec,
                  "duration_s": audio.duration_s, "engine_used": audio.engine,
                  "fallback_reason": audio.fallback_reason}
        return audio, fields
