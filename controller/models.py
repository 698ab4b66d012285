"""The controller's schema (SQLAlchemy 2). Alembic migrations follow these models."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from controller.domain import AlertState, AnnouncementStatus, ScheduleStatus, Targets, TimingKind
from controller.security import Role
from mqtt_contract import DEFAULT_TIMEZONE, LiveSource, Priority


class UTCDateTime(TypeDecorator):
    """Stores aware datetimes as UTC; SQLite forgets the zone, this puts it back."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class StrEnumColumn(TypeDecorator):
    """A ``StrEnum`` kept as its plain string (the schema is unchanged), read back as the
    enum member, so code compares members and a typo fails when it is written."""

    impl = String(16)
    cache_ok = True

    def __init__(self, enum: type[StrEnum], length: int = 16) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Any) -> StrEnum | None:
        return None if value is None else self.enum(value)


class TargetsColumn(TypeDecorator):
    """A schedule's :class:`~controller.domain.Targets`, stored as the JSON it always was."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Targets | dict | None, dialect: Any) -> dict | None:
        if value is None:
            return None
        return (value if isinstance(value, Targets) else Targets.model_validate(value)).stored()

    def process_result_value(self, value: dict | None, dialect: Any) -> Targets | None:
        return None if value is None else Targets.model_validate(value)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Commune(Base):
    """A commune (xã) of the deployment: its code (the MQTT topic segment), its name
    and its wall clock. Every commune-owned record names one (controller/scope.py)."""

    __tablename__ = "communes"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TIMEZONE)


class Node(Base):
    __tablename__ = "nodes"
    __table_args__ = (UniqueConstraint("commune", "node_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    commune: Mapped[str] = mapped_column(String(64), index=True)
    node_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    zones: Mapped[list[str]] = mapped_column(JSON, default=list)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    online: Mapped[bool] = mapped_column(default=False)
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)
    telemetry: Mapped[dict | None] = mapped_column(JSON)
    agent_version: Mapped[str | None] = mapped_column(String(32))
    plan_version: Mapped[int] = mapped_column(BigInteger, default=0)
    """The newest plan version published for this node."""
    plan_version_acked: Mapped[int | None] = mapped_column(BigInteger)
    """The plan version the node last said it holds (from telemetry)."""
    camera_names: Mapped[dict | None] = mapped_column(JSON)
    """camera id → its name for people ("Cổng chính"), from the node's config: alerts
    carry only the id, and every demo node's camera has the same one."""


class Announcement(Base):
    """Content (text rendered to audio) with its approval state.

    draft → submitted → approved (leader) → scheduled (an active schedule exists);
    editing the content sends it back to draft. Timing lives in :class:`Schedule`.
    """

    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    text: Mapped[str] = mapped_column(Text)
    commune: Mapped[str | None] = mapped_column(String(64), index=True)
    """The commune whose staff wrote it; None: a province bulletin."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[AnnouncementStatus] = mapped_column(StrEnumColumn(AnnouncementStatus),
                                                       default=AnnouncementStatus.draft)
    engine_requested: Mapped[str] = mapped_column(String(32), default="auto")
    engine_used: Mapped[str | None] = mapped_column(String(32))
    fallback_reason: Mapped[str | None] = mapped_column(Text)
    media_sha256: Mapped[str | None] = mapped_column(String(64))
    media_size: Mapped[int | None] = mapped_column(Integer)
    media_codec: Mapped[str | None] = mapped_column(String(16))
    duration_s: Mapped[float | None] = mapped_column(Float)
    items: Mapped[list | None] = mapped_column(JSON)
    """The composition (chime, speech, recording, silence, outro), when not plain text."""
    repeat: Mapped[int] = mapped_column(Integer, default=1)

    schedules: Mapped[list[Schedule]] = relationship(
        back_populates="announcement", cascade="all, delete-orphan", order_by="Schedule.id")


class Schedule(Base):
    """An announcement × targets × timing × priority × volume × repeat."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    announcement_id: Mapped[int] = mapped_column(
        ForeignKey("announcements.id", ondelete="CASCADE"), index=True)
    commune: Mapped[str | None] = mapped_column(String(64), index=True)
    """The commune whose account made it (its targets stay inside); None: the province."""
    targets: Mapped[Targets] = mapped_column(TargetsColumn, default=Targets)
    kind: Mapped[TimingKind] = mapped_column(StrEnumColumn(TimingKind, 8))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """The time (once), DTSTART (rrule) or the first moment (cron)."""
    rule: Mapped[str | None] = mapped_column(Text)
    until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    timezone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TIMEZONE)
    priority: Mapped[Priority] = mapped_column(StrEnumColumn(Priority),
                                               default=Priority.priority)
    volume: Mapped[int | None] = mapped_column(Integer)
    repeat: Mapped[int] = mapped_column(Integer, default=1)
    sequence: Mapped[int | None] = mapped_column(Integer)
    """Staff's order for clashing priority items: lower plays first."""
    status: Mapped[ScheduleStatus] = mapped_column(StrEnumColumn(ScheduleStatus),
                                                   default=ScheduleStatus.active)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    """Plans compiled at or after this (ms) include the schedule's current form."""

    announcement: Mapped[Announcement] = relationship(back_populates="schedules")


class Zone(Base):
    """A village (thôn) and its quiet hours; nodes name their zones in their config."""

    __tablename__ = "zones"
    __table_args__ = (UniqueConstraint("commune", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    commune: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    quiet_start: Mapped[str] = mapped_column(String(5), default="22:00")
    quiet_end: Mapped[str] = mapped_column(String(5), default="06:00")


class NodeGroup(Base):
    __tablename__ = "node_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    commune: Mapped[str | None] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    node_ids: Mapped[list[str]] = mapped_column(JSON, default=list)


class CalendarException(Base):
    """A day (holiday) on which ordinary and priority items do not play."""

    __tablename__ = "calendar_exceptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    commune: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")


class PlaybackLog(Base):
    """Every playback report, once (the report id makes a replay change nothing)."""

    __tablename__ = "playback_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[str] = mapped_column(String(128), unique=True)
    commune: Mapped[str] = mapped_column(String(64))
    node_id: Mapped[str] = mapped_column(String(64), index=True)
    item_id: Mapped[str] = mapped_column(String(128), index=True)
    event: Mapped[str] = mapped_column(String(16))
    planned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actual_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    duration_s: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[str] = mapped_column(Text, default="")
    clock_offset_ms: Mapped[float | None] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CameraAlertRecord(Base):
    """A camera alert from a node, stored once by its id; the snapshot is a file by sha256.

    Lifecycle (the alert desk): new → acknowledged → resolved | false_alarm. Who and when
    are kept per step here (for the desk's filters and cards) and every step, with its
    note, also goes to the audit log (the full history).
    """

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(128), unique=True)
    commune: Mapped[str] = mapped_column(String(64), index=True)
    node_id: Mapped[str] = mapped_column(String(64), index=True)
    camera: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    confidence: Mapped[float] = mapped_column(Float)
    boxes: Mapped[list] = mapped_column(JSON, default=list)
    snapshot_sha256: Mapped[str | None] = mapped_column(String(64))
    before_sha256: Mapped[str | None] = mapped_column(String(64))
    """The picture before the event (a ``dumping`` alert: before the object was left)."""
    state: Mapped[AlertState] = mapped_column(StrEnumColumn(AlertState),
                                              default=AlertState.new, index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_by: Mapped[str | None] = mapped_column(String(64))
    """Who closed it (resolved or false alarm)."""
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(Text, default="")
    """The officers' notes, one line per step ("acknowledged: …", "resolved: …")."""


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[Role] = mapped_column(StrEnumColumn(Role))
    commune: Mapped[str | None] = mapped_column(String(64))
    """The commune the account works for; None: a province account (sees every commune;
    administrators are always province accounts)."""
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEvent(Base):
    """Who did what, when: every approval transition and every sensitive action."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64), index=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class LexiconEntry(Base):
    """A commune's own word (place name, local abbreviation) and how to read it aloud."""

    __tablename__ = "lexicon_entries"
    __table_args__ = (UniqueConstraint("commune", "term"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    commune: Mapped[str] = mapped_column(String(64))
    term: Mapped[str] = mapped_column(String(100))
    reading: Mapped[str] = mapped_column(String(300))


class Upload(Base):
    """An uploaded recording, stored by content (never under the name the user sent).
    It is its commune's (a province upload, NULL, every commune may use): one file in the
    media store, one row per commune that has it."""

    __tablename__ = "uploads"
    __table_args__ = (UniqueConstraint("sha256", "commune", name="uq_uploads_sha256_commune"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    commune: Mapped[str | None] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(16))
    duration_s: Mapped[float] = mapped_column(Float)
    size: Mapped[int] = mapped_column(Integer)
    original_name: Mapped[str] = mapped_column(String(255), default="")
    """Shown to staff only; never used as a path."""
    uploaded_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Lease(Base):
    """A named lease in the database: which controller replica holds a singleton job."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UserSession(Base):
    """One sign-in (the ``jti`` of its token): logout and a password change end it here,
    so a copied token stops working at once rather than when it expires."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """A long-lived token for an integration, acting as one account (its role, its name
    in the audit log). Only a SHA-256 of the secret is kept; the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(64))


class OnlineSample(Base):
    """How many nodes were online at a moment: the dashboard's "online over time" chart.
    Written every ``online_sample_s`` by one replica; older than ``online_sample_days``
    is deleted as new ones come (bounded: 30 days at 5 minutes is 8,640 rows)."""

    __tablename__ = "online_samples"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    online: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)


class LiveBroadcast(Base):
    """One live session (an official speaking from the browser, or a relayed station):
    who opened it, whom it reached, when it ended and why, and its recording."""

    __tablename__ = "live_broadcasts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    """The session id nodes see (``live-{id}`` is its item id in the broadcast log)."""
    title: Mapped[str] = mapped_column(String(500), default="")
    source: Mapped[LiveSource] = mapped_column(StrEnumColumn(LiveSource))
    commune: Mapped[str | None] = mapped_column(String(64), index=True)
    targets: Mapped[Targets] = mapped_column(TargetsColumn)
    started_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(64))
    end_reason: Mapped[str | None] = mapped_column(String(300))
    frames: Mapped[int] = mapped_column(Integer, default=0)
    relay_slot_id: Mapped[int | None] = mapped_column(
        ForeignKey("relay_slots.id", ondelete="SET NULL"), index=True)
    """The relay slot this session aired for (None: a microphone, or a relay started at
    once by a leader)."""
    stream_source_id: Mapped[int | None] = mapped_column(
        ForeignKey("stream_sources.id", ondelete="SET NULL"))
    recording_sha256: Mapped[str | None] = mapped_column(String(64))
    recording_s: Mapped[float | None] = mapped_column(Float)


class StreamSource(Base):
    """A radio station an admin registered for relays (tiếp sóng): HTTP/Icecast MP3 or
    AAC, or HLS. Its last failure is kept, so staff see a broken station."""

    __tablename__ = "stream_sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    commune: Mapped[str | None] = mapped_column(String(64))
    """None: the province's station, which every commune may relay."""
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2000))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(300))
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RelaySlot(Base):
    """A station relayed on targets at scheduled times, each time for ``duration_s``:
    timed like a schedule (once, RRULE or cron in its time zone); a leader approves it."""

    __tablename__ = "relay_slots"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("stream_sources.id", ondelete="CASCADE"),
                                           index=True)
    commune: Mapped[str | None] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    targets: Mapped[Targets] = mapped_column(TargetsColumn, default=Targets)
    kind: Mapped[TimingKind] = mapped_column(StrEnumColumn(TimingKind, 8))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rule: Mapped[str | None] = mapped_column(Text)
    until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    timezone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TIMEZONE)
    duration_s: Mapped[float] = mapped_column(Float)
    priority: Mapped[Priority] = mapped_column(StrEnumColumn(Priority),
                                               default=Priority.priority)
    """Ordinary (held by its nodes' quiet hours) or priority (airs through them); on air
    it is ``live`` either way (:mod:`controller.services.relay`)."""
    status: Mapped[ScheduleStatus] = mapped_column(StrEnumColumn(ScheduleStatus),
                                                   default=ScheduleStatus.active)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    source: Mapped[StreamSource] = relationship()


class UpstreamBulletin(Base):
    """A bulletin the provincial source information system delivered (Công văn
    1273/BTTTT-TTCS): its id there, the announcement it became, and what it asked for.
    One row per (account, external id): a repeated delivery finds it and changes nothing
    (controller/services/upstream.py)."""

    __tablename__ = "upstream_bulletins"
    __table_args__ = (UniqueConstraint("account", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    """The upstream account that delivered it (each system has its own ids)."""
    external_id: Mapped[str] = mapped_column(String(128))
    announcement_id: Mapped[int | None] = mapped_column(
        ForeignKey("announcements.id", ondelete="SET NULL"), index=True)
    """None once staff deleted the announcement (the delivery is still remembered)."""
    level: Mapped[Priority] = mapped_column(StrEnumColumn(Priority))
    communes: Mapped[list[str]] = mapped_column(JSON)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """After this it must not air: schedules of its announcement are held inside."""
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
