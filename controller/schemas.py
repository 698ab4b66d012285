"""API request and response bodies (pydantic v2). Wire payloads live in mqtt_contract."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    computed_field,
    field_validator,
    model_validator,
)

from controller.domain import (
    AnnouncementStatus,
    Day,
    Instant,
    ScheduleStatus,
    Targets,
    TimingKind,
)
from controller.localtime import zone_name
from mqtt_contract import DEFAULT_TIMEZONE, CommandKind, Priority

TimeOfDay = str
SEGMENT = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NodeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    commune: str
    node_id: str
    name: str
    zones: list[str]
    lat: float | None
    lon: float | None
    online: bool
    last_seen: datetime | None
    agent_version: str | None
    plan_version: int
    plan_version_acked: int | None
    telemetry: dict | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def clock_trusted(self) -> bool:
        """False when the node's clock is not NTP-synced within 20 ms (or unknown): its
        speakers may start out of step with their neighbours."""
        clock = (self.telemetry or {}).get("clock") or {}
        return bool(clock.get("synced"))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def plan_current(self) -> bool:
        """The node holds the newest plan published for it."""
        return self.plan_version_acked is not None and (
            self.plan_version_acked >= self.plan_version)


class TimingIn(In):
    kind: Literal["once", "rrule", "cron"] = "once"
    start_at: Instant = Field(description="the time (once), DTSTART (rrule), first moment (cron)")
    rule: str | None = Field(default=None, max_length=500,
                             description="RRULE (e.g. FREQ=WEEKLY;BYDAY=MO,FR;BYHOUR=6) "
                                         "or cron (e.g. 0 7-11 * * 1-5)")
    until: Instant | None = None
    timezone: str = Field(default_factory=zone_name,
                          description="IANA zone; default: the commune's (LOAXA_TIMEZONE)")
    times: list[time] | None = Field(
        default=None, max_length=12,
        description="several times of day in one schedule (local, e.g. 06:00 and 17:00): "
                    "once on start_at's day, or the rule at each time (replacing its "
                    "BYHOUR/BYMINUTE/BYSECOND); not with cron")


class ScheduleIn(In):
    announcement_id: int
    targets: Targets
    timing: TimingIn
    priority: Literal["ordinary", "priority", "emergency"] = "priority"
    volume: int | None = Field(default=None, ge=0, le=100)
    repeat: int = Field(default=1, ge=1, le=20)
    sequence: int | None = Field(default=None, ge=0, le=1000,
                                 description="order among clashing priority items")


class ChimeIn(In):
    kind: Literal["chime"]


class OutroIn(In):
    kind: Literal["outro"]


class SpeechIn(In):
    kind: Literal["speech"]
    text: str = Field(min_length=1, max_length=5000)


class RecordingIn(In):
    kind: Literal["recording"]
    upload: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 from POST /api/uploads")


class SilenceIn(In):
    kind: Literal["silence"]
    seconds: float = Field(gt=0, le=60)


ItemIn = Annotated[ChimeIn | OutroIn | SpeechIn | RecordingIn | SilenceIn,
                   Field(discriminator="kind")]


class AnnouncementIn(In):
    text: str | None = Field(default=None, min_length=1, max_length=5000,
                             description="Vietnamese text: read between two chimes")
    items: list[ItemIn] | None = Field(
        default=None, min_length=1, max_length=50,
        description="or a composition: chime, speech, recording (an upload), silence, outro")
    repeat: int = Field(default=1, ge=1, le=10, description="times the whole is played")
    title: str = Field(default="", max_length=200)
    engine: Literal["auto", "gtts", "espeak-ng", "piper"] = "auto"
    voice: str = Field(default="vi", pattern=r"^[a-z0-9-]{1,32}$")
    play_now: bool = Field(default=False, description="schedule at once, a few seconds ahead")
    start_at: Instant | None = Field(default=None, description="schedule once at this time")
    nodes: list[str] | None = Field(default=None, description="targets; omitted = every node")
    zones: list[str] | None = None
    priority: Literal["ordinary", "priority"] = "priority"

    @model_validator(mode="after")
    def _text_or_items(self) -> AnnouncementIn:
        if (self.text is None) == (self.items is None):
            raise ValueError("give either text or items")
        return self

    @property
    def wants_schedule(self) -> bool:
        return self.play_now or self.start_at is not None

    @property
    def targets(self) -> Targets:
        if self.nodes is None and self.zones is None:
            return Targets.everyone()
        return Targets.of(nodes=self.nodes or (), zones=self.zones or ())

    def item_dicts(self) -> list[dict] | None:
        return [i.model_dump() for i in self.items] if self.items is not None else None


class AnnouncementEdit(In):
    text: str | None = Field(default=None, min_length=1, max_length=5000)
    title: str | None = Field(default=None, max_length=200)
    engine: Literal["auto", "gtts", "espeak-ng", "piper"] = "auto"
    voice: str = Field(default="vi", pattern=r"^[a-z0-9-]{1,32}$")


class TransitionIn(In):
    note: str = Field(default="", max_length=1000)


class DeliveryOut(BaseModel):
    node_id: str
    commune: str
    schedule_id: int
    item_id: str
    status: str
    planned_at: datetime
    actual_start: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    start_offset_ms: float | None = Field(description="actual minus planned start")
    detail: str


class ScheduleOut(BaseModel):
    id: int
    announcement_id: int
    title: str
    targets: Targets
    kind: TimingKind
    start_at: datetime
    rule: str | None
    until: datetime | None
    timezone: str
    priority: Priority
    volume: int | None
    repeat: int
    sequence: int | None
    status: ScheduleStatus
    created_by: str
    next_occurrences: list[datetime]


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    action: str
    detail: dict


class AnnouncementOut(BaseModel):
    id: int
    title: str
    text: str
    created_at: datetime
    created_by: str
    status: AnnouncementStatus
    engine_requested: str
    engine_used: str | None
    fallback_reason: str | None
    media_sha256: str | None
    media_codec: str | None
    media_size: int | None
    duration_s: float | None
    schedules: list[ScheduleOut]
    deliveries: list[DeliveryOut]
    summary: dict[str, int]
    history: list[AuditOut]


class EmergencyIn(In):
    text: str | None = Field(default=None, min_length=1, max_length=5000)
    announcement_id: int | None = None
    title: str = Field(default="Khẩn cấp", max_length=200)
    targets: Targets = Field(default_factory=lambda: Targets(all=True))
    repeat: int = Field(default=1, ge=1, le=20)
    volume: int | None = Field(default=100, ge=0, le=100)
    engine: Literal["auto", "gtts", "espeak-ng", "piper"] = "auto"

    @model_validator(mode="after")
    def _one_source(self) -> EmergencyIn:
        if (self.text is None) == (self.announcement_id is None):
            raise ValueError("give either text or announcement_id")
        return self


class EmergencyOut(BaseModel):
    announcement_id: int
    schedule_id: int
    item_id: str
    nodes: int
    sent_at: datetime


class StopIn(In):
    targets: Targets = Field(default_factory=lambda: Targets(all=True))


class NodeCommandIn(In):
    kind: Literal["volume", "test_tone", "resync", "stop", "reboot"]
    volume: int | None = Field(default=None, ge=0, le=100)

    @model_validator(mode="after")
    def _volume_given(self) -> NodeCommandIn:
        if self.kind == CommandKind.volume and self.volume is None:
            raise ValueError("a volume command needs volume (0-100)")
        return self


class CommandOut(BaseModel):
    command_id: str
    nodes: int


class ZoneIn(In):
    commune: str = Field(pattern=SEGMENT)
    code: str = Field(pattern=SEGMENT)
    name: str = Field(default="", max_length=200)
    quiet_start: TimeOfDay = Field(default="22:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    quiet_end: TimeOfDay = Field(default="06:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class ZoneOut(ZoneIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore")
    nodes: list[str] = []


class GroupIn(In):
    name: str = Field(pattern=SEGMENT)
    node_ids: list[str] = Field(default_factory=list, max_length=10_000)


class GroupOut(GroupIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore")


class HolidayIn(In):
    day: Day
    name: str = Field(default="", max_length=200)
    commune: str | None = Field(default=None, pattern=SEGMENT)


class HolidayOut(HolidayIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore")
    id: int


class LogEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    node_id: str
    item_id: str
    event: str
    planned_at: datetime
    actual_at: datetime
    duration_s: float | None
    detail: str
    clock_offset_ms: float | None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
    mqtt: bool
    version: str
    plan_leader: bool = Field(description="this replica rolls the plans' horizon")


class AlertOut(BaseModel):
    alert_id: str
    commune: str
    node_id: str
    camera: str
    kind: str
    at: datetime
    confidence: float
    boxes: list[dict]
    state: str
    snapshot_url: str | None
    received_at: datetime

    @classmethod
    def from_record(cls, r: object) -> AlertOut:
        data = {k: getattr(r, k) for k in ("alert_id", "commune", "node_id", "camera", "kind",
                                           "at", "confidence", "boxes", "state", "received_at")}
        url = (f"/api/alerts/{data['alert_id']}/snapshot"
               if getattr(r, "snapshot_sha256", None) else None)
        return cls(**data, snapshot_url=url)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    role: str
    expires_in: int


CommuneCode = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
                                    description="a commune's code (its topic segment)")]


class UserIn(In):
    username: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{2,63}$")
    password: str = Field(min_length=10, max_length=256)
    role: Literal["admin", "staff", "leader", "officer", "upstream"]
    full_name: str = Field(default="", max_length=200)
    commune: CommuneCode | None = Field(
        default=None, description="the commune the account works for; none: the province")


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    username: str
    full_name: str
    role: str
    active: bool
    commune: str | None = None


class CommuneIn(In):
    code: CommuneCode
    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(default=DEFAULT_TIMEZONE, max_length=64)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown time zone") from None
        return value


class CommuneOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    timezone: str




class OperationIn(In):
    """A remote operation on some nodes (each answers; see controller/services/operations)."""

    kind: Literal["volume", "test_tone", "restart", "config", "versions"]
    nodes: list[Annotated[str, Field(pattern=SEGMENT)]] = Field(default=[], max_length=1000)
    all: bool = False
    """Every registered node instead of ``nodes``."""
    volume: int | None = Field(default=None, ge=0, le=100)
    config_yaml: str | None = Field(default=None, max_length=64 * 1024)
    """``config``: the node's whole new YAML config (checked here and on the node)."""
    trial_s: float = Field(default=60.0, ge=1, le=600)
    """``config``: how long the node tries the new config before rolling back."""
    wait_s: float = Field(default=10.0, ge=0, le=60)
    """How long this request waits for the replies (then read ``GET /api/operations/{id}``)."""


class NodeAnswerOut(BaseModel):
    node_id: str
    name: str
    state: Literal["waiting", "answered", "no_answer"]
    ok: bool | None
    code: str | None
    """The node's outcome in one word (done, invalid, refused, busy, failed, rolled_back)."""
    message: str
    """The outcome in Vietnamese, for people."""
    data: dict | None
    answered_at: datetime | None


class OperationOut(BaseModel):
    id: str
    kind: str
    actor: str
    created_at: datetime
    finished: bool
    nodes: list[NodeAnswerOut]
