"""The loaxa MQTT contract, v1: every topic and every JSON payload, in one place.

Controller and edge both import this module and nothing else to talk to each other, so a
change to the wire format is a change here (and in docs/mqtt.md). Payloads are pydantic v2
models carrying a version field ``v``; receivers parse with :func:`parse` and drop what
does not validate. Media chunks are the only binary payloads.

Topic root: ``loaxa/v1/{commune}``. See docs/mqtt.md for the table of topics.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from enum import StrEnum
from importlib import metadata
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

log = logging.getLogger("loaxa.contract")
CONTRACT_VERSION = 1
ROOT = "loaxa/v1"
MEDIA_CHUNK_SIZE = 32 * 1024
"""Bytes per media chunk: small enough for a 3G link to finish one between drops."""
MIN_CHUNK_SIZE = 4 * 1024
MAX_CHUNK_SIZE = 1024 * 1024
"""Bounds of a media ref's ``chunk_size``: a 1-byte chunk size turned one 20 MB clip into
20 million chunks (and as many files, and a request listing them all)."""
MAX_MEDIA_BYTES = 64 * 1024 * 1024
"""The largest clip on the wire. The content pipeline's longest input is a 50 MB, 30 min
upload (broadcasts/uploads.py), re-encoded at 16-32 kbit/s (a 30 min clip is ~7 MB), so
64 MB leaves room without letting one ref claim a node's disk."""
MAX_MEDIA_CHUNKS = MAX_MEDIA_BYTES // MIN_CHUNK_SIZE
"""No media ref has more chunks than this (16,384), nor does a request list more."""
MAX_MEDIA_SECONDS = 6 * 3600.0
"""The longest clip a ref may declare (30 min of speech, repeated, with pauses)."""

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
"""The commune time zone when a setting or config names none (Vietnam has one zone)."""


def _software_version() -> str:
    try:
        return metadata.version("loaxa")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


SOFTWARE_VERSION = _software_version()
"""loaxa's version, from the package metadata (pyproject.toml is its only source)."""

_SEGMENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

Segment = Annotated[str, Field(pattern=_SEGMENT.pattern)]
Sha256 = Annotated[str, Field(pattern=_SHA256.pattern)]


MAX_INT64 = 2**63 - 1
"""Integers stored by either side fit SQLite's (and PostgreSQL's) 64-bit INTEGER: a plan
version of 2**64 failed the node's store after it was parsed (found by the fuzzer)."""
MAX_CAMERAS = 16
FINITE = ConfigDict(allow_inf_nan=False)
"""No NaN or infinity in a float field (JSON has neither; Python's reader accepts them,
and a NaN telemetry value stored at the controller made its node list invalid JSON)."""


def _strict_json(value: Any) -> Any:
    """Free-form JSON (telemetry's camera stats) must be strict JSON: finite numbers."""
    import json

    try:
        json.dumps(value, allow_nan=False)
    except ValueError as exc:
        raise ValueError("not strict JSON (NaN or infinity)") from exc
    return value


class ContractError(ValueError):
    """A topic or payload that does not follow the contract."""


def check_segment(value: str, what: str) -> str:
    """Refuse ids that would break topic structure (``/``, ``+``, ``#``, upper case, …)."""
    if not _SEGMENT.match(value):
        raise ContractError(
            f"{what} {value!r} must be 1-63 chars of a-z, 0-9, '-' or '_', starting alnum"
        )
    return value


# --------------------------------------------------------------------------- topics


class Account(StrEnum):
    """The two kinds of broker account: one per node, one for the controller(s)."""

    node = "node"
    controller = "controller"


class Reach(StrEnum):
    """Whom a topic concerns, read off its placeholders: one node, one zone, a commune."""

    node = "node"
    zone = "zone"
    commune = "commune"


_PLACEHOLDER = re.compile(r"^\{([a-z0-9_]+)\}$")
_PARAM_CHECKS: dict[str, re.Pattern[str]] = {
    "node": _SEGMENT, "zone": _SEGMENT, "sha256": _SHA256, "index": re.compile(r"^\d{1,9}$"),
}


@dataclass(frozen=True)
class Message:
    """One outgoing MQTT message, with the QoS and retain flag its topic declares."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass(frozen=True)
class TopicSpec:
    """One topic of the contract: where it lives, who sends it, how, and what it carries.

    ``path`` is relative to ``loaxa/v1/{commune}``; ``{node}``, ``{zone}``, ``{sha256}`` and
    ``{index}`` are its parameters. The sender's account may publish on it; the other side
    subscribes. From these declarations come the topic strings (:meth:`topic`), both sides'
    subscriptions (:func:`node_subscriptions`, :func:`controller_subscriptions`), the broker
    ACL (firmware_config/broker.py) and the table in docs/mqtt.md.
    """

    name: str
    path: str
    sender: Account
    qos: int
    retain: bool
    payload: type[Payload] | None
    """The JSON model; None for binary media chunks."""
    doc: str
    shared: bool = False
    """Controllers take it through an MQTT 5 shared subscription, so replicas split it:
    each alert, playback report, heartbeat and media request is handled by one replica.
    Not status (retained, and a shared subscription receives no retained message: every
    replica must learn who is online at connect) nor replies (every replica hears them;
    the one whose command desk asked takes the answer)."""

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(m.group(1) for p in self.path.split("/") if (m := _PLACEHOLDER.match(p)))

    @property
    def reach(self) -> Reach:
        params = self.params
        return Reach.node if "node" in params else Reach.zone if "zone" in params else (
            Reach.commune)

    def topic(self, commune: str, **params: object) -> str:
        """The concrete topic; every parameter is checked so no id can inject ``/+#``."""
        if set(params) != set(self.params):
            raise ContractError(f"{self.name} takes {self.params}, got {tuple(params)}")
        for key, value in params.items():
            if not _PARAM_CHECKS[key].match(str(value)):
                raise ContractError(f"{key} {value!r} does not fit topic {self.name}")
        return f"{ROOT}/{check_segment(commune, 'commune')}/" + self.path.format(**params)

    def filter(self, commune: str = "+", **params: object) -> str:
        """A subscription filter: the parameters given are filled in, the rest are ``+``."""
        parts = []
        for part in self.path.split("/"):
            m = _PLACEHOLDER.match(part)
            parts.append(str(params.get(m.group(1), "+")) if m else part)
        return f"{ROOT}/{commune}/" + "/".join(parts)

    def message(self, commune: str, payload: Payload | bytes, **params: object) -> Message:
        """What to publish: the topic, the bytes, and this topic's QoS and retain flag."""
        data = payload if isinstance(payload, bytes) else payload.to_bytes()
        return Message(self.topic(commune, **params), data, self.qos, self.retain)

    def match(self, parts: list[str]) -> dict[str, str] | None:
        """The parameters of ``parts`` (a topic below the commune) if it is this topic."""
        mine = self.path.split("/")
        if len(parts) != len(mine):
            return None
        found: dict[str, str] = {}
        for want, got in zip(mine, parts, strict=True):
            if m := _PLACEHOLDER.match(want):
                if not _PARAM_CHECKS[m.group(1)].match(got):
                    raise ContractError(f"bad {m.group(1)} {got!r} in a {self.name} topic")
                found[m.group(1)] = got
            elif want != got:
                return None
        return found


class TopicInfo(BaseModel):
    """What a received topic says: which declared topic, and its parameters."""

    spec_name: str
    commune: str
    node: str | None = None
    zone: str | None = None
    sha256: str | None = None
    chunk: int | None = None

    @property
    def kind(self) -> str:
        return self.spec_name

    @property
    def spec(self) -> TopicSpec:
        return TOPIC_BY_NAME[self.spec_name]


def parse_topic(topic: str) -> TopicInfo:
    """Which declared topic ``topic`` is; raise ContractError if it is none of ours."""
    parts = topic.split("/")
    if len(parts) < 4 or "/".join(parts[:2]) != ROOT or not _SEGMENT.match(parts[2]):
        raise ContractError(f"not a loaxa v1 topic: {topic!r}")
    for spec in TOPICS:
        params = spec.match(parts[3:])
        if params is not None:
            index = params.pop("index", None)
            return TopicInfo(spec_name=spec.name, commune=parts[2], **params,
                             chunk=int(index) if index is not None else None)
    raise ContractError(f"unknown loaxa topic: {topic!r}")


def node_subscriptions(commune: str, node: str, zones: list[str]) -> list[tuple[str, int]]:
    """What one node subscribes to (and, in the ACL, may read): every controller-sent
    topic addressed to it, to one of its zones, or to its whole commune."""
    subs: list[tuple[str, int]] = []
    for spec in TOPICS:
        if spec.sender != Account.controller:
            continue
        if spec.reach == Reach.node:
            subs.append((spec.filter(commune, node=node), spec.qos))
        elif spec.reach == Reach.zone:
            subs += [(spec.filter(commune, zone=zone), spec.qos) for zone in zones]
        else:
            subs.append((spec.filter(commune), spec.qos))
    return subs


def node_publications(commune: str, node: str) -> list[str]:
    """The topics one node may publish on: its own node-sent topics (the ACL's writes)."""
    return [spec.filter(commune, node=node) for spec in TOPICS if spec.sender == Account.node]


def controller_subscriptions(share_group: str) -> list[tuple[str, int]]:
    """What a controller subscribes to: every node-sent topic of every commune; the
    shared ones through ``$share/{share_group}/`` so replicas split them."""
    return [(f"$share/{share_group}/{s.filter()}" if s.shared else s.filter(), s.qos)
            for s in TOPICS if s.sender == Account.node]


# --------------------------------------------------------------------------- payloads


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class Payload(BaseModel):
    """Base of every JSON payload: versioned, strict about unknown fields' types."""

    model_config = ConfigDict(extra="ignore", frozen=False, allow_inf_nan=False)
    v: Literal[1] = CONTRACT_VERSION

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class Priority(StrEnum):
    """Priorities, lowest first (:data:`PRIORITY_RANK`); names follow Thông tư 39/2020.

    ordinary (thông thường) < priority (ưu tiên) < live (a live relay) < emergency
    (khẩn cấp). A higher one preempts a lower one; quiet hours hold back ordinary items
    and camera reminders only.
    """

    ordinary = "ordinary"
    priority = "priority"
    live = "live"
    emergency = "emergency"


PRIORITY_RANK = {p: i for i, p in enumerate(Priority)}


# --------------------------------------------------------------------------- signed envelope
#
# Every plan and command carries ``sig``: whom it is for (commune, target), when it was
# signed and until when it holds, its place in the signer's sequence, the key that signed
# it and an Ed25519 signature over :func:`canonical_bytes`. The controller signs
# (controller/signing.py, at the one publish point, controller/mqtt_link.py); a node checks
# (edge/trust.py) before anything is applied. Media carries no signature: it is fetched by
# the sha256 that a signed plan or command names, and checked against it.

MAX_INT64 = 2**63 - 1
"""The largest integer a sequence, a time or a plan version may be (SQLite's INTEGER)."""
PLAN_TTL_S = 7 * 24 * 3600
"""A signed plan holds this long: a node that was off for a week still takes the retained
plan the broker kept for it; older than that, it keeps what it has."""
COMMAND_TTL_S = 3600
"""A signed command holds this long (the MQTT Message Expiry of commands too)."""
PLAN_VERSION_LEAD_MS = 7 * 24 * 3600 * 1000
"""How far a plan's version may run ahead of its signing time (ms). The controller's
versions are ``max(previous + 1, now in ms)``, so a real plan is at most a few ms ahead;
a version beyond this bound (the poisoned 9223372036854775807) is refused."""
KEY_ID_LENGTH = 16
_KEY_ID = re.compile(rf"^[0-9a-f]{{{KEY_ID_LENGTH}}}$")


class Target(StrEnum):
    """Whom a signed message is for: one node, every node of a zone, the whole commune."""

    node = "node"
    zone = "zone"
    all = "all"


class Refusal(StrEnum):
    """Why a node refused a plan or command (counted in its telemetry, by these names)."""

    unsigned = "unsigned"
    unknown_key = "unknown_key"
    bad_signature = "bad_signature"
    wrong_commune = "wrong_commune"
    wrong_target = "wrong_target"
    expired = "expired"
    replayed = "replayed"
    version_ahead = "version_ahead"
    """A plan whose version runs further ahead of its signing time than the bound."""


class Signature(BaseModel):
    """The ``sig`` of a plan or command. Everything here but ``signature`` is signed."""

    commune: Segment
    target: Target
    to: Segment | None = None
    """The node id (target node) or zone (target zone); none for the whole commune."""
    seq: int = Field(ge=1, le=MAX_INT64)
    """Strictly increasing per signer (signing time in µs, persisted so that it never goes
    back): a node refuses a message not newer than the last it took on the same stream."""
    signed_ms: int = Field(ge=0, le=MAX_INT64)
    expires_ms: int = Field(ge=0, le=MAX_INT64)
    key_id: Annotated[str, Field(pattern=_KEY_ID.pattern)]
    replica: Segment | None = None
    """Which controller replica signed (its MQTT client id). Replicas share the key but
    not a sequence: each numbers its own messages, so each is its own replay stream."""
    signature: Annotated[str, Field(max_length=128)] = ""
    """Ed25519 over :func:`canonical_bytes`, base64."""

    def stream(self) -> str:
        """The replay stream (the receiver prefixes the message kind): a message is
        compared with the last of the same signer key, replica and addressee, so a zone
        command and a node command can cross in flight, and so can two replicas' plans
        (a plan's version, not its sequence, says which of those is newer)."""
        signer = self.key_id if self.replica is None else f"{self.key_id}@{self.replica}"
        return f"{signer}/{self.target.value}/{self.to or '-'}"


def canonical_bytes(document: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the JSON document as sent, without
    ``sig.signature``, keys sorted, no spaces, ASCII only (JCS-like). Built from the raw
    document, not from a model, so fields one side does not know are covered too and a
    newer controller's extra fields do not break an older node's check."""
    body = dict(document)
    sig = body.get("sig")
    if isinstance(sig, dict):
        body["sig"] = {k: v for k, v in sig.items() if k != "signature"}
    return canonical_json(body)


def canonical_json(value: Any) -> bytes:
    """Any JSON value in the canonical form of :func:`canonical_bytes`."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode()


class Signed(Payload):
    """A payload that must be signed: plans and commands."""

    sig: Signature | None = None
    _canonical: bytes | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_canonical(cls, data: Any, handler: Any, info: ValidationInfo) -> Any:
        """Received JSON is checked as it came, so keep its canonical bytes."""
        model = handler(data)
        if info.mode == "json" and isinstance(data, dict):
            model._canonical = canonical_bytes(data)
        return model

    def __eq__(self, other: object) -> bool:
        """Equal when the fields are: how a message came (its kept bytes) is no part of it."""
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    def signed_bytes(self) -> bytes:
        """What the signature covers: the message as received, else as it would be sent."""
        if self._canonical is not None:
            return self._canonical
        return canonical_bytes(json.loads(self.to_bytes()))


def key_id(public_key: bytes) -> str:
    """A public key's id: the start of the sha256 of its 32 raw bytes, in hex."""
    return hashlib.sha256(public_key).hexdigest()[:KEY_ID_LENGTH]


def decode_public_key(text: str) -> bytes:
    """A trusted key as written in a node config: the 32 raw bytes in base64."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a trusted key is base64 of 32 bytes") from exc
    if len(raw) != 32:
        raise ValueError("a trusted key is base64 of 32 bytes (Ed25519)")
    return raw


def verify_signature(message: Signed, trusted: dict[str, bytes]) -> Refusal | None:
    """Check ``message``'s signature against the trusted keys (key id -> raw public key).
    None when it holds; otherwise why not. Addressing, freshness and order are the
    receiver's (edge/trust.py)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    sig = message.sig
    if sig is None or not sig.signature:
        return Refusal.unsigned
    public = trusted.get(sig.key_id)
    if public is None:
        return Refusal.unknown_key
    try:
        signature = base64.b64decode(sig.signature, validate=True)
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message.signed_bytes())
    except (InvalidSignature, binascii.Error, ValueError):
        return Refusal.bad_signature
    return None


class Status(Payload):
    """Retained on ``node/{node}/status``; the will message publishes ``online=False``."""

    node: Segment
    online: bool
    at: datetime = Field(default_factory=utcnow)
    version: str | None = None
    zones: list[Segment] = []


class ClockState(BaseModel):
    model_config = FINITE
    synced: bool
    offset_ms: float | None = None
    source: str = "unknown"


class Telemetry(Payload):
    """Heartbeat on ``node/{node}/telemetry`` (QoS 0): what an operator looks at."""

    node: Segment
    at: datetime = Field(default_factory=utcnow)
    uptime_s: float
    disk_free_mb: float
    temperature_c: float | None = None
    volume: int = Field(ge=0, le=100)
    now_playing: str | None = None
    plan_version: int | None = Field(default=None, ge=0, le=MAX_INT64)
    clock: ClockState
    cache_items: int = 0
    outbox_pending: int = 0
    cameras: Annotated[list[dict[str, Any]], Field(max_length=MAX_CAMERAS),
                       AfterValidator(_strict_json)] = []
    """Per camera: state, fps, frames, alerts, reminders, reconnects, last error."""
    refused: dict[Annotated[str, Field(max_length=32)], Annotated[int, Field(ge=0)]] = Field(
        default={}, max_length=32)
    """Plans and commands refused since the agent started, by :class:`Refusal` name
    (edge/trust.py). Plain names, so a controller older than a node that knows a new
    reason still takes its telemetry."""


class MediaCodec(StrEnum):
    """The codecs (and file extensions) of media on the wire: an enum, because the codec
    becomes part of a file name on both sides (a ``../`` codec reached a path join)."""

    mp3 = "mp3"
    opus = "opus"
    ogg = "ogg"
    wav = "wav"


ChunkIndex = Annotated[int, Field(ge=0, lt=MAX_MEDIA_CHUNKS)]


def _unique_sorted(chunks: list[int]) -> list[int]:
    return sorted(set(chunks))


ChunkList = Annotated[list[ChunkIndex], Field(max_length=MAX_MEDIA_CHUNKS),
                      AfterValidator(_unique_sorted)]
"""A list of chunk indexes: capped, each in range, deduplicated and sorted (one chunk
listed 30,000 times made a controller send it 30,000 times)."""


class MediaRef(BaseModel):
    """A piece of audio by content: the node fetches and verifies it by sha256. Every
    size is bounded (:data:`MAX_MEDIA_BYTES`, :data:`MIN_CHUNK_SIZE`..:data:`MAX_CHUNK_SIZE`,
    :data:`MAX_MEDIA_CHUNKS`), so no ref can make a node ask for millions of chunks."""

    model_config = FINITE

    sha256: Sha256
    size: int = Field(gt=0, le=MAX_MEDIA_BYTES)
    codec: MediaCodec = MediaCodec.mp3
    duration_s: float = Field(gt=0, le=MAX_MEDIA_SECONDS)
    chunk_size: int = Field(default=MEDIA_CHUNK_SIZE, ge=MIN_CHUNK_SIZE, le=MAX_CHUNK_SIZE)

    @model_validator(mode="after")
    def _few_enough_chunks(self) -> MediaRef:
        if self.chunks > MAX_MEDIA_CHUNKS:
            raise ValueError(f"{self.chunks} chunks; at most {MAX_MEDIA_CHUNKS}")
        return self

    @property
    def chunks(self) -> int:
        return -(-self.size // self.chunk_size)


MAX_TITLE_CHARS = 500
MAX_PLAN_ITEMS = 5000
"""A 48 h plan of a busy node holds a few hundred items; 5,000 bounds a plan's memory."""


class PlanItem(BaseModel):
    """One thing to play at an absolute time. ``id`` is stable across plan versions."""

    id: Annotated[str, Field(min_length=1, max_length=128)]
    title: str = Field(default="", max_length=MAX_TITLE_CHARS)
    media: MediaRef
    start_at: datetime
    priority: Priority = Priority.priority
    volume: int | None = Field(default=None, ge=0, le=100)
    repeat: int = Field(default=1, ge=1, le=20)
    ignore_quiet_hours: bool = False


class QuietWindow(BaseModel):
    """A local wall-clock window (may wrap midnight) when ordinary items and camera
    reminders wait. The one owner of the quiet-hours rule: node config, camera config, the
    controller's plan compiler and the node's scheduler all ask :meth:`contains`."""

    start: time
    end: time

    @field_serializer("start", "end")
    def _hh_mm(self, value: time) -> str:
        return value.strftime("%H:%M")

    def contains(self, local: time) -> bool:
        """Is the local time ``local`` inside the window? A window ending before it starts
        wraps midnight; an empty window (start == end) holds nothing."""
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


DEFAULT_QUIET_HOURS = QuietWindow(start=time(22, 0), end=time(6, 0))
"""Quiet hours of a zone or node that sets none (22:00-06:00 local)."""


def check_timezone(name: str) -> str:
    """An IANA time zone name that this machine knows (a validator for config fields)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


class Plan(Signed):
    """Retained on ``node/{node}/plan``: the node's whole desired schedule, versioned.

    Signed (``sig``, target the node). A node takes a plan whose signature holds and whose
    sequence is newer than the last plan it took, so a replayed or stale retained plan
    changes nothing; the version is what it reports back (telemetry ``plan_version``), and
    must not run ahead of the signing time by more than :data:`PLAN_VERSION_LEAD_MS`.
    """

    node: Segment
    version: int = Field(ge=0, le=MAX_INT64)
    generated_at: datetime = Field(default_factory=utcnow)
    horizon_until: datetime | None = None
    items: list[PlanItem] = Field(default=[], max_length=MAX_PLAN_ITEMS)
    quiet_hours: QuietWindow | None = None
    """The node's zone's quiet hours, set at the controller (overrides the node config)."""
    _items_json: tuple[list[PlanItem], bytes, bytes] | None = PrivateAttr(default=None)
    """``items`` as JSON made once for every plan that shares them: (the list it was made
    from, as sent, canonical). A copy with other items (a new list) does not use it."""

    def share_item_json(self, wire: bytes, canonical: bytes) -> None:
        """The compiler's JSON of ``items`` (``PlanItems``): this plan's bytes are spliced
        from it. The caller promises it is exactly ``items`` serialised."""
        self._items_json = (self.items, wire, canonical)

    def _shared_items(self, form: int) -> bytes | None:
        shared = self._items_json
        return shared[form] if shared is not None and shared[0] is self.items else None

    def to_bytes(self) -> bytes:
        if (items := self._shared_items(1)) is None:
            return super().to_bytes()
        empty = self.model_copy(update={"items": []})
        return _splice_items(Payload.to_bytes(empty), items)

    def signed_bytes(self) -> bytes:
        if self._canonical is not None or (items := self._shared_items(2)) is None:
            return super().signed_bytes()
        empty = self.model_copy(update={"items": []})
        empty._canonical = None
        return _splice_items(Signed.signed_bytes(empty), items)


_EMPTY_ITEMS = b'"items":[]'


def _splice_items(document: bytes, items: bytes) -> bytes:
    """``document`` (a plan with no items, in either form) with its items put back. Only
    the items can hold free text: before them, ``"items":[]`` occurs nowhere else."""
    head, found, tail = document.partition(_EMPTY_ITEMS)
    if not found:
        raise ValueError("a plan's JSON without its items list")
    return head + b'"items":' + items + tail


class CommandKind(StrEnum):
    play = "play"  # emergency/live play of a media ref now
    stop = "stop"
    volume = "volume"
    test_tone = "test_tone"
    reboot = "reboot"
    resync = "resync"  # re-publish status, re-request the plan and missing media
    restart = "restart"  # the agent exits with RESTART_EXIT_CODE; systemd starts it again
    config = "config"  # a new node config: validated, written atomically, tried, kept or undone
    versions = "versions"  # software, config, Python and OS versions in Reply.data
    live_start = "live_start"  # a live session begins: ``live`` carries its key and timing
    live_stop = "live_stop"  # the live session ``item_id`` ends


RESTART_EXIT_CODE = 75
"""The agent's exit status when asked to restart (EX_TEMPFAIL): a failure to systemd, so a
unit with ``Restart=on-failure`` or ``Restart=always`` starts it again."""
NODE_CONFIG_MAX_BYTES = 64 * 1024
"""A pushed node config (JSON) is at most this big: a config is a page of settings."""
CONFIG_TRIAL_MAX_S = 600.0
DEFAULT_CONFIG_TRIAL_S = 60.0
"""How long a node tries a pushed config before it restores the old one (seconds)."""


class ReplyCode(StrEnum):
    """The outcome of a command in one word, so the controller can say it in Vietnamese
    without showing the node's ``detail`` (English, for logs) to people."""

    done = "done"
    invalid = "invalid"  # the command or its config does not validate
    refused = "refused"  # not allowed on this node (reboot disabled, another node's config)
    busy = "busy"  # another config trial is under way
    failed = "failed"  # tried and failed on the node
    rolled_back = "rolled_back"  # the new config could not connect: the old one is back


LIVE_SAMPLE_RATES = (8000, 12000, 16000, 24000, 48000)
"""The rates Opus decodes to; a session names one (16 kHz: speech on horn speakers)."""
LIVE_MAX_BITRATE = 24_000
"""Opus bit rate ceiling on the wire to nodes (mono, bit/s)."""
LIVE_MAX_FRAME_BYTES = 16 * 1024
"""A live frame on the wire is at most this big (400 ms at 24 kbit/s is ~1.3 KB)."""
LIVE_TAG_BYTES = 16


class LiveSource(StrEnum):
    """Where a live session's sound comes from."""

    microphone = "microphone"  # an official speaking from the browser
    relay = "relay"  # a radio station relayed (tiếp sóng)


class LiveSession(BaseModel):
    """What a ``live_start`` command tells the nodes: the session's id, its frame key and
    its timing. The key is inside a signed command, so only the controller can open a
    session; every frame carries an HMAC under it (:class:`LiveFrame`), so frames of no
    session, or of another, are dropped. Every node of a zone gets the same ``latency_ms``
    and so plays each frame at the same instant (its capture time plus the latency)."""

    model_config = FINITE

    id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    key: Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{43}=$")]
    """HMAC-SHA256 key of the frames, base64 of 32 random bytes."""
    source: LiveSource = LiveSource.microphone
    title: str = Field(default="", max_length=MAX_TITLE_CHARS)
    sample_rate: int = 16000
    frame_ms: int = Field(default=400, ge=100, le=1000)
    latency_ms: int = Field(default=1200, ge=200, le=5000)
    silence_s: float = Field(default=4.0, ge=1.0, le=60.0)
    """A node that receives no frame for this long ends the session by itself."""
    priority: Priority = Priority.live

    @field_validator("sample_rate")
    @classmethod
    def _opus_rate(cls, value: int) -> int:
        if value not in LIVE_SAMPLE_RATES:
            raise ValueError(f"sample_rate must be one of {LIVE_SAMPLE_RATES}")
        return value

    @field_validator("key")
    @classmethod
    def _key_bytes(cls, value: str) -> str:
        try:
            if len(base64.b64decode(value, validate=True)) != 32:
                raise ValueError
        except (binascii.Error, ValueError):
            raise ValueError("key is base64 of 32 bytes") from None
        return value

    def key_bytes(self) -> bytes:
        return base64.b64decode(self.key)


def live_item_id(session_id: str) -> str:
    """A live session's item id in playback reports and the broadcast log."""
    return f"live-{session_id}"


@dataclass(frozen=True)
class LiveFrame:
    """One live frame on ``live`` / ``zone/{zone}/live`` (binary, QoS 0).

    Layout (big-endian): ``b"LX"``, version (1), packet count, session id (16 bytes),
    sequence (u32), capture time (u64, ms since the epoch), packet length (u16, ms), then
    each Opus packet as u16 length + bytes, then a 16-byte tag: HMAC-SHA256 under the
    session key over everything before it, truncated. Binary because base64 in JSON
    would add a third to every byte a 4G link carries for a whole session.
    """

    session: str
    seq: int
    capture_ms: int
    packet_ms: int
    packets: tuple[bytes, ...]

    HEADER = struct.Struct(">2sBB16sIQH")

    @property
    def duration_ms(self) -> int:
        return self.packet_ms * len(self.packets)

    def pack(self, key: bytes) -> bytes:
        body = bytearray(self.HEADER.pack(b"LX", 1, len(self.packets),
                                          bytes.fromhex(self.session), self.seq,
                                          self.capture_ms, self.packet_ms))
        for packet in self.packets:
            body += struct.pack(">H", len(packet)) + packet
        body += hmac.new(key, bytes(body), hashlib.sha256).digest()[:LIVE_TAG_BYTES]
        if len(body) > LIVE_MAX_FRAME_BYTES:
            raise ContractError(f"a live frame of {len(body)} bytes is too big")
        return bytes(body)

    @staticmethod
    def session_of(data: bytes) -> str | None:
        """The session id a frame claims (before its tag is checked), or None."""
        if len(data) < LiveFrame.HEADER.size or data[:3] != b"LX\x01":
            return None
        return data[4:20].hex()

    @classmethod
    def unpack(cls, data: bytes, key: bytes) -> LiveFrame:
        """Check the tag first (a constant-time compare), then the layout."""
        if not LiveFrame.HEADER.size + LIVE_TAG_BYTES <= len(data) <= LIVE_MAX_FRAME_BYTES:
            raise ContractError("a live frame of the wrong size")
        body, tag = data[:-LIVE_TAG_BYTES], data[-LIVE_TAG_BYTES:]
        if not hmac.compare_digest(
                hmac.new(key, body, hashlib.sha256).digest()[:LIVE_TAG_BYTES], tag):
            raise ContractError("a live frame whose tag does not hold")
        magic, version, count, session, seq, capture_ms, packet_ms = cls.HEADER.unpack_from(
            body)
        if magic != b"LX" or version != 1 or not 1 <= packet_ms <= 1000:
            raise ContractError("not a v1 live frame")
        packets, at = [], cls.HEADER.size
        for _ in range(count):
            (length,) = struct.unpack_from(">H", body, at) if at + 2 <= len(body) else (-1,)
            if length < 0 or at + 2 + length > len(body):
                raise ContractError("a live frame cut short")
            packets.append(body[at + 2:at + 2 + length])
            at += 2 + length
        if at != len(body):
            raise ContractError("a live frame with bytes after its packets")
        return cls(session.hex(), seq, capture_ms, packet_ms, tuple(packets))


class Command(Signed):
    """On ``node/…/cmd``, ``zone/…/cmd`` or ``all/cmd``. Replies carry the same ``id``.

    Signed (``sig``): its target is the topic's node, zone or commune.

    MQTT 5 properties: the controller sets Response Topic and Correlation Data; nodes
    answer on their own ``node/{node}/reply`` topic (the only one their ACL may write).
    """

    id: str = Field(default_factory=new_id, min_length=1, max_length=128)
    kind: CommandKind
    at: datetime = Field(default_factory=utcnow)
    media: MediaRef | None = None
    priority: Priority = Priority.emergency
    volume: int | None = Field(default=None, ge=0, le=100)
    repeat: int = Field(default=1, ge=1, le=20)
    item_id: str | None = Field(default=None, min_length=1, max_length=128)
    node_config: dict[str, Any] | None = None
    """``config`` only: the whole new node config (the YAML file's mapping)."""
    trial_s: float | None = Field(default=None, gt=0, le=CONFIG_TRIAL_MAX_S)
    """``config`` only: how long the node may try to connect with it before rolling back
    (default :data:`DEFAULT_CONFIG_TRIAL_S`)."""
    live: LiveSession | None = None
    """``live_start`` only: the session (``live_stop`` names it in ``item_id``)."""

    @field_validator("node_config")
    @classmethod
    def _config_bounded(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value)) > NODE_CONFIG_MAX_BYTES:
            raise ValueError(f"node_config is larger than {NODE_CONFIG_MAX_BYTES} bytes")
        return value


class Reply(Payload):
    node: Segment
    command_id: str
    ok: bool
    detail: str = Field(default="", max_length=2000)
    code: ReplyCode | None = None
    """The outcome in one word (nodes older than remote operations send none)."""
    data: dict[str, str | int | float | bool | None] | None = None
    """What a ``versions`` command reports (``software``, ``config_sha256``, ``python``,
    ``os``, …); at most 32 entries."""

    @field_validator("data")
    @classmethod
    def _data_bounded(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and (len(value) > 32 or any(
                len(k) > 64 or (isinstance(v, str) and len(v) > 512) for k, v in value.items())):
            raise ValueError("reply data is limited to 32 short entries")
        return value


class MediaRequest(Payload):
    """A node asks for chunks it lacks (``chunks`` empty = all of them)."""

    node: Segment
    sha256: Sha256
    chunks: ChunkList = []


class PlaybackEvent(StrEnum):
    started = "started"
    finished = "finished"
    failed = "failed"
    preempted = "preempted"
    stopped = "stopped"
    skipped = "skipped"


class PlaybackReport(Payload):
    """On ``node/{node}/playback``. ``id`` makes the report idempotent at the controller."""

    id: str = Field(default_factory=new_id, min_length=1, max_length=128)
    node: Segment
    item_id: str
    event: PlaybackEvent
    planned_at: datetime
    actual_at: datetime
    duration_s: float | None = None
    detail: str = ""
    clock_offset_ms: float | None = None


class Box(BaseModel):
    model_config = FINITE
    x1: float
    y1: float
    x2: float
    y2: float
    label: str = ""
    confidence: float = Field(default=0.0, ge=0, le=1)


class Alert(Payload):
    """On ``node/{node}/alert``: one camera event, snapshot inline (base64 JPEG, capped)."""

    id: str = Field(min_length=1, max_length=128)
    node: Segment
    camera: Annotated[str, Field(min_length=1, max_length=64)]
    kind: Annotated[str, Field(min_length=1, max_length=64)]
    at: datetime
    confidence: float = Field(ge=0, le=1)
    boxes: list[Box] = []
    snapshot_jpeg_b64: str | None = Field(default=None, max_length=400_000)
    before_jpeg_b64: str | None = Field(default=None, max_length=400_000)
    """The scene before the event (a ``dumping`` alert: before the object was left)."""


# --------------------------------------------------------------------------- the topic table

_N, _C = Account.node, Account.controller
STATUS = TopicSpec("status", "node/{node}/status", _N, 1, True, Status,
                   "online/offline; the will message publishes `online: false`")
TELEMETRY = TopicSpec("telemetry", "node/{node}/telemetry", _N, 0, False, Telemetry,
                      "heartbeat (also sent right after a new plan is applied)",
                      shared=True)
PLAYBACK = TopicSpec("playback", "node/{node}/playback", _N, 1, False, PlaybackReport,
                     "started / finished / failed / preempted / stopped / skipped, "
                     "from the node's outbox", shared=True)
ALERT = TopicSpec("alert", "node/{node}/alert", _N, 1, False, Alert,
                  "camera alert with its snapshot, from the node's outbox", shared=True)
REPLY = TopicSpec("reply", "node/{node}/reply", _N, 1, False, Reply,
                  "answer to a command; MQTT 5 Correlation Data copied")
MEDIA_REQUEST = TopicSpec("media_request", "node/{node}/media/request", _N, 1, False,
                          MediaRequest, "chunks the node lacks", shared=True)
PLAN = TopicSpec("plan", "node/{node}/plan", _C, 1, True, Plan,
                 "the node's whole desired schedule, versioned")
NODE_CMD = TopicSpec("node_cmd", "node/{node}/cmd", _C, 1, False, Command,
                     "a command to one node")
ZONE_CMD = TopicSpec("zone_cmd", "zone/{zone}/cmd", _C, 1, False, Command,
                     "a command to every node of a zone")
ALL_CMD = TopicSpec("all_cmd", "all/cmd", _C, 1, False, Command,
                    "a command to every node of the commune")
MEDIA = TopicSpec("media", "media/{sha256}/{index}", _C, 1, False, None,
                  "binary chunk, published once per commune (the broker fans it out)")
ZONE_MEDIA = TopicSpec("zone_media", "zone/{zone}/media/{sha256}/{index}", _C, 1, False, None,
                       "binary chunk for one zone's nodes")
NODE_MEDIA = TopicSpec("node_media", "node/{node}/media/{sha256}/{index}", _C, 1, False, None,
                       "binary chunk re-sent to one node on its request")
LIVE = TopicSpec("live", "live", _C, 0, False, None,
                 "live frame (`LiveFrame`, HMAC under the session key) for the whole commune")
ZONE_LIVE = TopicSpec("zone_live", "zone/{zone}/live", _C, 0, False, None,
                      "live frame for one zone's nodes (a late frame is useless: QoS 0)")

TOPICS: tuple[TopicSpec, ...] = (STATUS, TELEMETRY, PLAYBACK, ALERT, REPLY, MEDIA_REQUEST,
                                 PLAN, NODE_CMD, ZONE_CMD, ALL_CMD, MEDIA, ZONE_MEDIA,
                                 NODE_MEDIA, LIVE, ZONE_LIVE)
"""Every topic of the contract. Adding one is a declaration here plus its handler."""
TOPIC_BY_NAME = {spec.name: spec for spec in TOPICS}
COMMAND_TOPICS = (NODE_CMD, ZONE_CMD, ALL_CMD)
MEDIA_TOPICS = (MEDIA, ZONE_MEDIA, NODE_MEDIA)
LIVE_TOPICS = (LIVE, ZONE_LIVE)


def topic_table() -> str:
    """The topic table of docs/mqtt.md, rendered from :data:`TOPICS` (a test compares)."""
    rows = ["| topic (under the root) | sender | reach | retained | QoS | payload | what |",
            "|---|---|---|---|---|---|---|"]
    for s in TOPICS:
        payload = f"`{s.payload.__name__}`" if s.payload else "binary"
        rows.append(f"| `{s.path}` | {s.sender.value} | {s.reach.value} | "
                    f"{'yes' if s.retain else 'no'} | {s.qos} | {payload} | {s.doc} |")
    return "\n".join(rows) + "\n"


P = TypeVar("P", bound=Payload)


_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
"""A NUL character as JSON writes it: `\\u0000` after an even run of backslashes (a text
holding a backslash then "u0000" is written `\\\\u0000` and is fine). Raw control
characters are invalid JSON already."""


def parse(model: type[P], data: bytes | str) -> P:
    """Validate a received payload; raise ContractError with the reason when it is bad.
    Text with a NUL character is bad: no field needs one, and PostgreSQL refuses it, so it
    must be dropped here as malformed, not fail in a handler's database write."""
    if _NUL.search(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data):
        raise ContractError(f"invalid {model.__name__}: a NUL character in its text")
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "payload"
        raise ContractError(f"invalid {model.__name__}: {where}: {first['msg']}") from exc
    except (ValueError, TypeError) as exc:
        raise ContractError(f"invalid {model.__name__}: {exc}") from exc


Handler = Callable[[TopicInfo, Any, Any], None]
"""A message handler: (the topic's info, the validated payload or chunk bytes, MQTT 5
properties or None)."""


class Dispatcher:
    """Routes received messages to one handler per declared topic, both sides alike.

    The topic is matched against :data:`TOPICS` and the payload validated with the topic's
    model before the handler sees it; what does not fit, or has no handler, or makes its
    handler raise is logged and dropped (counted in ``dropped``): the receiver keeps running.
    """

    def __init__(self, who: str) -> None:
        self.who = who
        self.handlers: dict[str, Handler] = {}
        self.dropped = 0

    def on(self, spec: TopicSpec, handler: Handler) -> None:
        self.handlers[spec.name] = handler

    def dispatch(self, topic: str, payload: bytes, properties: Any = None) -> bool:
        try:
            info = parse_topic(topic)
            handler = self.handlers.get(info.spec_name)
            if handler is None:
                raise ContractError(f"{self.who} handles no {info.spec_name} messages")
            model = info.spec.payload
            handler(info, parse(model, payload) if model else payload, properties)
            return True
        except ContractError as exc:
            self.dropped += 1
            log.warning("%s dropped a message on %s: %s", self.who, topic, exc)
        except Exception:
            self.dropped += 1
            log.exception("%s dropped a message on %s: its handler failed", self.who, topic)
        return False


def describe() -> dict[str, Any]:
    """JSON schemas of every payload, for docs and for other implementations."""
    models = [Status, Telemetry, Plan, Command, Reply, MediaRequest, PlaybackReport, Alert]
    return {m.__name__: m.model_json_schema() for m in models}


# --------------------------------------------------------------------------- client conventions

SESSION_EXPIRY_S = 7 * 24 * 3600
"""Nodes keep a persistent session: QoS 1 commands and chunks wait at the broker for a
node that is offline (bounded by the broker's max_queued_messages)."""


def new_client(client_id: str, username: str, password: str | None, *,
               persistent: bool = True) -> Any:
    """A paho-mqtt 2 client set up the loaxa way: MQTT 5, persistent session, backoff.

    The caller adds callbacks, the will, then ``connect_async`` + ``loop_start``; paho's
    own reconnect loop retries with exponential backoff (1 s doubling to 60 s).
    """
    import paho.mqtt.client as mqtt

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    client.username_pw_set(username, password)
    client.reconnect_delay_set(min_delay=1, max_delay=60)
    client.max_queued_messages_set(10_000)
    client.max_inflight_messages_set(100)
    return client


def connect_properties(persistent: bool = True) -> Any:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = SESSION_EXPIRY_S if persistent else 0
    return props
