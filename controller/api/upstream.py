"""The link to the provincial source information system (Công văn 1273/BTTTT-TTCS):
bulletins in (``POST /api/upstream/bulletins``, the ``upstream`` role's API token),
what became of them, and statistics out per commune and day (JSON or CSV).
See docs/api.md; the rules are in ``controller/services/upstream.py``."""

from __future__ import annotations

import base64
import binascii
import logging
import math
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, Field, ValidationError, model_validator
from sqlalchemy.exc import IntegrityError

from broadcasts.uploads import MAX_BYTES, UploadRejected, store_upload
from controller.api.content import refusal
from controller.api.deps import CurrentUser, Day, RuntimeDep, SessionDep, Upstream, UpstreamReader
from controller.api.errors import ErrorCode, api_error, content_refused, refused
from controller.runtime import Runtime
from controller.schemas import CommuneCode, In
from controller.services import upstream
from controller.services.content import ContentError
from controller.services.emergency import EmergencyError
from mqtt_contract import Priority

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/upstream", tags=["upstream"])

MAX_AUDIO_BYTES = MAX_BYTES
"""The decoded ``audio`` at most: the same bound as an upload from the page."""
BULLETINS_PATH = "/api/upstream/bulletins"


def base64_length(size: int) -> int:
    return 4 * math.ceil(size / 3)


BODY_LIMITS = {BULLETINS_PATH: base64_length(MAX_BYTES) + (1 << 20)}
"""The bulletin route's body may carry its audio (base64) and a little JSON around it
(``api/body_limit.py``); the route reads it itself, after the role check."""
ExternalId = Annotated[str, Field(min_length=1, max_length=128,
                                  pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
                                  description="the bulletin's id in the upstream system")]


class BulletinIn(In):
    external_id: ExternalId
    title: str = Field(min_length=1, max_length=200)
    text: str | None = Field(default=None, min_length=1, max_length=5000,
                             description="Vietnamese text, read aloud (gTTS; espeak-ng "
                                         "offline)")
    audio: str | None = Field(default=None, min_length=1,
                              description="base64 of an MP3, WAV or Ogg/Opus recording "
                                          f"(at most {MAX_BYTES // 2**20} MiB decoded, 30 min)")
    level: Priority = Field(description="TT39 level: ordinary, priority or emergency")
    communes: list[CommuneCode] = Field(min_length=1, max_length=1000,
                                        description="target communes' codes")
    valid_from: AwareDatetime | None = Field(default=None,
                                             description="not to air before this")
    valid_until: AwareDatetime | None = Field(default=None,
                                              description="not to air after this")

    @model_validator(mode="after")
    def _text_or_audio(self) -> BulletinIn:
        if (self.text is None) == (self.audio is None):
            raise ValueError("give either text or audio")
        return self


class BulletinOut(BaseModel):
    external_id: str
    announcement_id: int | None
    level: Priority
    communes: list[str]
    targets: dict[str, Any] = Field(description="whom its schedule reaches: every node of "
                                                "its communes")
    valid_from: datetime | None
    valid_until: datetime | None
    received_at: datetime
    status: str = Field(description="the announcement's: draft, submitted, approved, "
                                    "scheduled, cancelled (or deleted)")
    scheduled: bool = Field(description="it has an active schedule")
    emergency_sent: bool = Field(description="it went out as an emergency")
    aired: bool = Field(description="a node reported playing it")
    nodes_played: int = Field(description="nodes that played it (the playback log)")


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The body's JSON schema with its ``$defs`` written in place (OpenAPI has no
    ``$defs`` next to a request body)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


BULLETIN_BODY = {"required": True, "content": {"application/json": {
    "schema": _inline_refs(BulletinIn.model_json_schema())}}}


@router.post("/bulletins", response_model=BulletinOut, status_code=201,
             openapi_extra={"requestBody": BULLETIN_BODY},
             responses={200: {"description": "delivered before: the same bulletin, unchanged",
                              "model": BulletinOut},
                        413: {"description": "audio too large"},
                        415: {"description": "audio is not a recording"},
                        422: {"description": "unknown commune, validity, body"}})
async def receive(request: Request, response: Response, user: Upstream,
                  runtime: RuntimeDep) -> BulletinOut:
    """Take a bulletin from the provincial source information system. It lands as a
    draft province announcement for its communes (an ``emergency`` as
    ``LOAXA_UPSTREAM_EMERGENCY`` says: a draft, or on the air at once). Idempotent: the
    same ``external_id`` from the same account again answers 200 with the first one.

    The body is read here, after the role check (as uploads are): a caller without the
    role is refused before its audio is read."""
    body = parse_body(await request.body())
    return await run_in_threadpool(deliver, body, user, runtime, response)


def parse_body(raw: bytes) -> BulletinIn:
    try:
        return BulletinIn.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


def deliver(body: BulletinIn, user: CurrentUser, runtime: Runtime,
            response: Response) -> BulletinOut:
    with runtime.db.session(commune=user.commune) as s:
        if (row := upstream.find(s, user.username, body.external_id)) is not None:
            response.status_code = 200
            return BulletinOut(**upstream.state(s, row))
    audio = store_audio(body, user, runtime) if body.audio is not None else None
    delivery = upstream.Delivery(
        account=user.username, external_id=body.external_id, title=body.title,
        level=body.level, communes=list(body.communes), text=body.text,
        recording=audio.sha256 if audio else None, valid_from=body.valid_from,
        valid_until=body.valid_until)
    try:
        with runtime.db.session(commune=user.commune) as s:
            if audio is not None:
                upstream.keep_upload(s, audio.sha256, audio.format, audio.duration_s,
                                     audio.size, f"{body.external_id}.{audio.format}",
                                     user.username)
            received = upstream.receive(s, delivery, runtime.content,
                                        runtime.settings.upstream_emergency)
            return BulletinOut(**upstream.state(s, received.bulletin))
    except upstream.UpstreamError as exc:
        raise refused(422, exc) from None
    except ContentError as exc:
        raise content_refused(exc) from None
    except EmergencyError as exc:
        raise refused(409, exc) from None
    except IntegrityError:  # the same id delivered in parallel: that one was kept
        with runtime.db.session(commune=user.commune) as s:
            row = upstream.find(s, user.username, body.external_id)
            if row is None:
                raise
            response.status_code = 200
            return BulletinOut(**upstream.state(s, row))


@dataclass(frozen=True)
class StoredAudio:
    sha256: str
    format: str
    duration_s: float
    size: int


def audio_refused(reason: str) -> HTTPException:
    """An upload's refusal (status, code, Vietnamese message: ``api/content.refusal``)."""
    answer = refusal(reason)
    return api_error(answer.status, answer.code, answer.message)


def store_audio(body: BulletinIn, user: CurrentUser, runtime: Runtime) -> StoredAudio:
    """Decode ``audio`` and check it as an upload is checked (size, then ffprobe: a
    recording of at most 30 min), and keep it in the media store by its sha256."""
    assert body.audio is not None
    if len(body.audio) > base64_length(MAX_AUDIO_BYTES):
        raise audio_refused("file too big")
    try:
        data = base64.b64decode(body.audio, validate=True)
    except (binascii.Error, ValueError):
        raise api_error(422, ErrorCode.upload_malformed,
                        "Trường audio phải là base64 của một bản ghi âm.") from None
    if len(data) > MAX_AUDIO_BYTES:
        raise audio_refused("file too big")
    if not data:
        raise audio_refused("the file is empty")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "upstream-audio"
        src.write_bytes(data)
        try:
            stored = store_upload(src, runtime.media.root, max_bytes=MAX_AUDIO_BYTES)
        except UploadRejected as exc:
            log.info("upstream audio from %s refused: %s", user.username, exc)
            raise audio_refused(str(exc)) from None
    return StoredAudio(stored.sha256, stored.format, stored.duration_s, len(data))


@router.get("/bulletins/{external_id}", response_model=BulletinOut)
def bulletin_state(external_id: Annotated[str, PathParam(max_length=128)], user: Upstream,
                   session: SessionDep) -> BulletinOut:
    """What became of a bulletin this account delivered: the announcement's status,
    whether it is scheduled, whether it aired and on how many nodes."""
    row = upstream.find(session, user.username, external_id)
    if row is None:
        raise api_error(404, ErrorCode.not_found,
                        f"Không có bản tin mã {external_id[:128]} do hệ thống này gửi.")
    return BulletinOut(**upstream.state(session, row))


StatsFormat = Literal["json", "csv"]
STATS_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"content": {
    "application/json": {"schema": {"type": "object"}},
    "text/csv": {"schema": {"type": "string"}}},
    "description": "per commune: clusters total and online, broadcasts aired, minutes per "
                   "item and per node, live and relay minutes"}}


@router.get("/stats", response_model=None, responses=STATS_RESPONSES)
def stats(user: UpstreamReader, session: SessionDep, day: Day,
          commune: CommuneCode | None = None, format: StatsFormat = "json"
          ) -> dict | Response:
    """One local day (each commune's own clock) per commune: clusters (nodes) total,
    online now (the node state the dashboard shows) and reporting that day; broadcasts
    aired (finished, preempted or stopped plays, as the daily report counts them) with
    minutes per item and per node; live and relay minutes. JSON, or CSV (UTF-8 with a
    BOM, for Excel). A commune account's answer holds its commune only."""
    try:
        report = upstream.stats(session, day, commune)
    except upstream.UnknownCommune as exc:
        raise refused(422, exc) from None
    if format == "csv":
        return Response(upstream.stats_csv(report), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition":
                                 f'attachment; filename="thong-ke-{day}.csv"'})
    return report
