"""The loaxa MQTT contract, v1: every topic and every JSON payload, in one place.

Controller and edge both import this module and nothing else to talk to each other, so a
change to the wire format is a change here (and in docs/mqtt.md). Payloads are pydantic v2
models carrying a version field ``v``; receivers parse with :func:`parse` and drop what
does not validate. Media chunks are the only binary payloads.

Topic root: ``loaxa/v1/{commune}``. See docs/mqtt.md for the table of topics.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, time
from enum import StrEnum
from importlib import metadata
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer

CONTRACT_VERSION = 1
ROOT = "loaxa/v1"
MEDIA_CHUNK_SIZE = 32 * 1024
"""Bytes per media chunk: small enough for a 3G link to finish one between drops."""

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


class Topics:
    """Topic builders for one commune. Every topic string in loaxa comes from here."""

    def __init__(self, commune: str) -> None:
        self.commune = check_segment(commune, "commune")
        self.root = f"{ROOT}/{commune}"

    # node → controller
    def status(self, node: str) -> str:
        return f"{self.root}/node/{node}/status"

    def telemetry(self, node: str) -> str:
        return f"{self.root}/node/{node}/telemetry"

    def playback(self, node: str) -> str:
        return f"{self.root}/node/{node}/playback"

    def alert(self, node: str) -> str:
        return f"{self.root}/node/{node}/alert"

    def reply(self, node: str) -> str:
        return f"{self.root}/node/{node}/reply"

    def media_request(self, node: str) -> str:
        return f"{self.root}/node/{node}/media/request"

    # controller → node
    def plan(self, node: str) -> str:
        return f"{self.root}/node/{node}/plan"

    def node_cmd(self, node: str) -> str:
        return f"{self.root}/node/{node}/cmd"

    def zone_cmd(self, zone: str) -> str:
        return f"{self.root}/zone/{zone}/cmd"

    def all_cmd(self) -> str:
        return f"{self.root}/all/cmd"

    def media_chunk(self, sha256: str, index: int) -> str:
        """Commune-wide chunk: published once, the broker fans it out to every node."""
        return f"{self.root}/media/{sha256}/{index}"

    def zone_media_chunk(self, zone: str, sha256: str, index: int) -> str:
        """Zone-wide chunk: for media only that zone's nodes play."""
        return f"{self.root}/zone/{zone}/media/{sha256}/{index}"

    def node_media_chunk(self, node: str, sha256: str, index: int) -> str:
        """Chunk re-sent to one node on its request (resume after an outage)."""
        return f"{self.root}/node/{node}/media/{sha256}/{index}"

    # subscriptions
    def node_subscriptions(self, node: str, zones: list[str]) -> list[str]:
        """What a node subscribes to: its plan and commands, and media for it."""
        subs = [
            self.plan(node),
            self.node_cmd(node),
            self.all_cmd(),
            f"{self.root}/media/+/+",
            f"{self.root}/node/{node}/media/+/+",
        ]
        for zone in zones:
            subs += [self.zone_cmd(zone), f"{self.root}/zone/{zone}/media/+/+"]
        return subs


CONTROLLER_SUBSCRIPTIONS = [
    f"{ROOT}/+/node/+/status",
    f"{ROOT}/+/node/+/telemetry",
    f"{ROOT}/+/node/+/playback",
    f"{ROOT}/+/node/+/reply",
    f"{ROOT}/+/node/+/media/request",
]
ALERT_SUBSCRIPTION = f"{ROOT}/+/node/+/alert"
"""Alerts go through an MQTT 5 shared subscription ($share/…) so replicas split the work."""


class TopicInfo(BaseModel):
    """What a received topic says: whose it is and what kind of message."""

    commune: str
    scope: Literal["node", "zone", "all", "media"]
    target: str | None = None
    kind: str
    sha256: str | None = None
    chunk: int | None = None


def parse_topic(topic: str) -> TopicInfo:
    """Split a loaxa topic into its parts; raise ContractError if it is not one of ours."""
    parts = topic.split("/")
    if len(parts) < 4 or "/".join(parts[:2]) != ROOT:
        raise ContractError(f"not a loaxa v1 topic: {topic!r}")
    commune, rest = parts[2], parts[3:]
    if rest[0] == "media" and len(rest) == 3:
        return _media_info(commune, "media", None, rest[1], rest[2])
    if rest[0] == "all" and rest[1:] == ["cmd"]:
        return TopicInfo(commune=commune, scope="all", kind="cmd")
    if rest[0] in ("node", "zone") and len(rest) >= 3:
        scope, target = rest[0], rest[1]
        if rest[2] == "media" and len(rest) == 5:
            return _media_info(commune, scope, target, rest[3], rest[4])
        return TopicInfo(commune=commune, scope=scope, target=target, kind="/".join(rest[2:]))
    raise ContractError(f"unknown loaxa topic: {topic!r}")


def _media_info(commune: str, scope: str, target: str | None, sha: str, idx: str) -> TopicInfo:
    if not _SHA256.match(sha) or not idx.isdigit():
        raise ContractError(f"bad media topic part: {sha}/{idx}")
    return TopicInfo(
        commune=commune, scope=scope, target=target, kind="media", sha256=sha, chunk=int(idx)
    )


# --------------------------------------------------------------------------- payloads


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class Payload(BaseModel):
    """Base of every JSON payload: versioned, strict about unknown fields' types."""

    model_config = ConfigDict(extra="ignore", frozen=False)
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


class Status(Payload):
    """Retained on ``node/{node}/status``; the will message publishes ``online=False``."""

    node: Segment
    online: bool
    at: datetime = Field(default_factory=utcnow)
    version: str | None = None
    zones: list[Segment] = []


class ClockState(BaseModel):
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
    plan_version: int | None = None
    clock: ClockState
    cache_items: int = 0
    outbox_pending: int = 0
    cameras: list[dict[str, Any]] = []
    """Per camera: state, fps, frames, alerts, reminders, reconnects, last error."""


class MediaRef(BaseModel):
    """A piece of audio by content: the node fetches and verifies it by sha256."""

    sha256: Sha256
    size: int = Field(gt=0, le=200 * 1024 * 1024)
    codec: str = "mp3"
    duration_s: float = Field(gt=0)
    chunk_size: int = Field(default=MEDIA_CHUNK_SIZE, gt=0)

    @property
    def chunks(self) -> int:
        return -(-self.size // self.chunk_size)


class PlanItem(BaseModel):
    """One thing to play at an absolute time. ``id`` is stable across plan versions."""

    id: Annotated[str, Field(min_length=1, max_length=128)]
    title: str = ""
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


class Plan(Payload):
    """Retained on ``node/{node}/plan``: the node's whole desired schedule, versioned.

    A node applies a plan only if its version is newer than the one it holds, so a
    replayed or stale retained plan changes nothing.
    """

    node: Segment
    version: int = Field(ge=0)
    generated_at: datetime = Field(default_factory=utcnow)
    horizon_until: datetime | None = None
    items: list[PlanItem] = []
    quiet_hours: QuietWindow | None = None
    """The node's zone's quiet hours, set at the controller (overrides the node config)."""


class CommandKind(StrEnum):
    play = "play"  # emergency/live play of a media ref now
    stop = "stop"
    volume = "volume"
    test_tone = "test_tone"
    reboot = "reboot"
    resync = "resync"  # re-publish status, re-request the plan and missing media


class Command(Payload):
    """On ``node/…/cmd``, ``zone/…/cmd`` or ``all/cmd``. Replies carry the same ``id``.

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
    item_id: str | None = None


class Reply(Payload):
    node: Segment
    command_id: str
    ok: bool
    detail: str = ""


class MediaRequest(Payload):
    """A node asks for chunks it lacks (``chunks`` empty = all of them)."""

    node: Segment
    sha256: Sha256
    chunks: list[int] = []


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


P = TypeVar("P", bound=Payload)


def parse(model: type[P], data: bytes | str) -> P:
    """Validate a received payload; raise ContractError with the reason when it is bad."""
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "payload"
        raise ContractError(f"invalid {model.__name__}: {where}: {first['msg']}") from exc
    except (ValueError, TypeError) as exc:
        raise ContractError(f"invalid {model.__name__}: {exc}") from exc


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
