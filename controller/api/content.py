"""Content: templates, uploaded recordings, a preview to listen to, the commune's words."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import NamedTuple

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUpload

from broadcasts.templates import TemplateError, list_templates, render_template
from broadcasts.uploads import MAX_BYTES, UploadRejected, store_upload
from controller.api.body_limit import MULTIPART_OVERHEAD
from controller.api.deps import CurrentUser, RuntimeDep, SessionDep, Staff, home_commune
from controller.api.errors import ErrorCode, api_error, content_refused
from controller.models import LexiconEntry, Upload
from controller.runtime import Runtime
from controller.schemas import AnnouncementIn, In
from controller.services import audit
from controller.services.content import ContentError, has_words, reading, text_items

log = logging.getLogger(__name__)
router = APIRouter(tags=["content"])
READ_BLOCK = 1 << 20


class TemplateOut(BaseModel):
    id: str
    title: str
    body: str
    fields: list[dict[str, str]]


class TemplateValues(In):
    values: dict[str, str] = Field(default_factory=dict)


class UploadOut(BaseModel):
    sha256: str
    format: str
    duration_s: float
    size: int
    original_name: str


class LexiconIn(In):
    term: str = Field(min_length=1, max_length=100)
    reading: str = Field(min_length=1, max_length=300)


class PreviewIn(AnnouncementIn):
    """The same body as an announcement; only the audio comes back."""


class ReadingIn(In):
    text: str = Field(max_length=5000)


class ReadingOut(BaseModel):
    reading: str = Field(description="the words the speaker will say (numbers, dates, "
                                     "abbreviations and the commune's lexicon applied)")
    has_words: bool


@router.get("/api/templates", response_model=list[TemplateOut])
def templates(user: Staff) -> list[TemplateOut]:
    """Vietnamese announcement templates with their fields."""
    return [TemplateOut(id=t.id, title=t.title, body=t.body,
                        fields=[{"name": f.name, "label": f.label, "example": f.example}
                                for f in t.fields]) for t in list_templates()]


@router.post("/api/templates/{template_id}/render")
def render(template_id: str, body: TemplateValues, user: Staff) -> dict[str, str]:
    """Fill a template's fields; missing or unknown fields are named in a 422."""
    try:
        return {"text": render_template(template_id, body.values)}
    except TemplateError as exc:
        raise HTTPException(404 if "unknown template" in str(exc) else 422, str(exc)) from None


UPLOAD_PATH = "/api/uploads"
BODY_LIMITS = {UPLOAD_PATH: MAX_BYTES + MULTIPART_OVERHEAD}
"""The one route whose body may be larger than the default (``api/body_limit.py``)."""
UPLOAD_BODY = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary",
                            "description": "WAV, MP3, M4A or OGG"}}}}}}


class Refusal(NamedTuple):
    status: int
    code: ErrorCode
    message: str


REFUSALS: list[tuple[str, Refusal]] = [
    ("file too big", Refusal(413, ErrorCode.upload_too_large,
                             f"Tệp quá lớn: tối đa {MAX_BYTES / 1e6:.0f} MB.")),
    ("recording too long", Refusal(422, ErrorCode.upload_too_long,
                                   "Bản ghi quá dài: tối đa 30 phút.")),
    ("the file is empty", Refusal(422, ErrorCode.upload_empty, "Tệp rỗng.")),
    ("the recording is empty", Refusal(422, ErrorCode.upload_empty,
                                       "Bản ghi không có âm thanh.")),
    ("the file is a video", Refusal(415, ErrorCode.upload_not_audio,
                                    "Tệp là video: hãy tải lên phần âm thanh thôi.")),
]
NOT_AUDIO = Refusal(415, ErrorCode.upload_not_audio,
                    "Tệp không phải bản ghi âm đọc được: hãy tải lên WAV, MP3, M4A hoặc OGG.")


def refusal(reason: str) -> Refusal:
    """What the person sees for an ``UploadRejected``: a code and a Vietnamese message.
    The reason itself stays in the log (ffprobe's text names the temp file)."""
    for prefix, answer in REFUSALS:
        if reason.startswith(prefix):
            return answer
    return NOT_AUDIO


@router.post(UPLOAD_PATH, response_model=UploadOut, status_code=201, openapi_extra={
    "requestBody": UPLOAD_BODY},
             responses={413: {"description": "over 50 MB"},
                        415: {"description": "not audio"}, 422: {"description": "too long"}})
async def upload(request: Request, user: Staff, runtime: RuntimeDep) -> UploadOut:
    """Upload a recording (multipart, field ``file``). It is probed with ffprobe and stored
    by its sha256 (the name you send is only shown back to you); non-audio, over 50 MB or
    over 30 min is refused.

    The body is read here, after the role check: a caller who may not upload is refused
    before a byte of it is read, and the size limit applies while it streams."""
    form = await read_form(request)
    try:
        file = form.get("file")
        if not isinstance(file, StarletteUpload):
            raise api_error(422, ErrorCode.upload_malformed,
                            "Không thấy tệp: gửi bản ghi trong trường “file”.")
        return await run_in_threadpool(store, file, user, runtime)
    finally:
        await form.close()


async def read_form(request: Request) -> FormData:
    try:
        return await request.form(max_files=1, max_fields=10, max_part_size=64 * 1024)
    except HTTPException as exc:
        if exc.status_code == 413:
            raise
        raise api_error(400, ErrorCode.upload_malformed,
                        "Nội dung gửi lên không đúng dạng multipart/form-data.") from None


def store(file: StarletteUpload, user: CurrentUser, runtime: Runtime) -> UploadOut:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "upload"
        size = copy_limited(file, src, MAX_BYTES)
        try:
            stored = store_upload(src, runtime.media.root)
        except UploadRejected as exc:
            log.info("upload by %s refused: %s", user.username, exc)
            answer = refusal(str(exc))
            raise api_error(answer.status, answer.code, answer.message) from None
    name = Path(file.filename or "").name[:255]
    with runtime.db.session(commune=user.commune) as s:
        row = s.scalar(select(Upload).where(Upload.sha256 == stored.sha256))
        if row is None:
            row = Upload(sha256=stored.sha256, format=stored.format,
                         duration_s=stored.duration_s, size=size, original_name=name,
                         uploaded_by=user.username)
            s.add(row)
            audit.record(s, user.username, "upload", "upload", stored.sha256, name=name)
        return UploadOut(sha256=row.sha256, format=row.format, duration_s=row.duration_s,
                         size=row.size, original_name=row.original_name)


def copy_limited(file: StarletteUpload, dst: Path, limit: int) -> int:
    """Copy at most ``limit`` bytes; refuse (413) as soon as the upload is larger."""
    size = 0
    with open(dst, "wb") as out:
        while block := file.file.read(READ_BLOCK):
            size += len(block)
            if size > limit:
                answer = refusal("file too big")
                raise api_error(answer.status, answer.code, answer.message)
            out.write(block)
    if size == 0:
        answer = refusal("the file is empty")
        raise api_error(answer.status, answer.code, answer.message)
    return size


@router.post("/api/preview", response_class=FileResponse,
             responses={200: {"content": {"audio/mpeg": {}}}})
def preview(body: PreviewIn, user: Staff, runtime: RuntimeDep) -> FileResponse:
    """The assembled, loudness-normalised audio, to listen to before scheduling."""
    items = body.item_dicts() or text_items(body.text or "")
    with runtime.db.session(commune=user.commune) as s:
        try:
            audio, media = runtime.content.render(s, items, repeat=body.repeat,
                                                  engine=body.engine, voice=body.voice)
        except ContentError as exc:
            raise content_refused(exc) from None
    path = runtime.media.path(media["media_sha256"], media["media_codec"])
    headers = {"X-Loaxa-Engine": audio.engine, "X-Loaxa-Duration": f"{audio.duration_s:.2f}"}
    if audio.fallback_reason:
        headers["X-Loaxa-Fallback"] = audio.fallback_reason.encode("ascii", "replace").decode()
    media_type = "audio/mpeg" if audio.codec == "mp3" else "audio/ogg"
    return FileResponse(path, media_type=media_type, headers=headers)


@router.post("/api/reading", response_model=ReadingOut)
def read_aloud(body: ReadingIn, user: Staff, session: SessionDep,
               runtime: RuntimeDep) -> ReadingOut:
    """How the text will be read aloud, shown beside the preview: a wrong reading is
    fixed in the text or the lexicon before it airs. Stores nothing."""
    spoken = reading(session, home_commune(user, runtime), body.text)
    return ReadingOut(reading=spoken, has_words=has_words(spoken))


@router.get("/api/lexicon", response_model=list[LexiconIn])
def get_lexicon(user: Staff, session: SessionDep, runtime: RuntimeDep) -> list[LexiconIn]:
    """The commune's own words and how they are read aloud."""
    rows = session.scalars(select(LexiconEntry).where(
        LexiconEntry.commune == home_commune(user, runtime)).order_by(LexiconEntry.term))
    return [LexiconIn(term=r.term, reading=r.reading) for r in rows]


@router.put("/api/lexicon", response_model=LexiconIn)
def put_word(body: LexiconIn, user: Staff, session: SessionDep,
             runtime: RuntimeDep) -> LexiconIn:
    """Add or change a word (a place name, a local abbreviation): no code change needed."""
    commune = home_commune(user, runtime)
    row = session.scalar(select(LexiconEntry).where(LexiconEntry.commune == commune,
                                                    LexiconEntry.term == body.term))
    if row is None:
        row = LexiconEntry(commune=commune, term=body.term, reading=body.reading)
        session.add(row)
    row.reading = body.reading
    audit.record(session, user.username, "lexicon", "lexicon", body.term, reading=body.reading)
    return body


@router.delete("/api/lexicon/{term}", status_code=204)
def delete_word(term: str, user: Staff, session: SessionDep, runtime: RuntimeDep) -> None:
    row = session.scalar(select(LexiconEntry).where(
        LexiconEntry.commune == home_commune(user, runtime), LexiconEntry.term == term))
    if row is None:
        raise HTTPException(404, f"no word {term!r}")
    session.delete(row)
    audit.record(session, user.username, "delete_lexicon", "lexicon", term)


