"""API request and response bodies (pydantic v2). Wire payloads live in mqtt_contract."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mqtt_contract import Priority


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


class AnnouncementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=5000, description="Vietnamese text to speak")
    title: str = Field(default="", max_length=200)
    start_at: datetime | None = Field(
        default=None, description="When to play (with a time zone); omitted = now")
    priority: Priority = Priority.scheduled
    engine: Literal["auto", "gtts", "espeak-ng", "espeak"] = "auto"
    voice: str = Field(default="vi", pattern=r"^[a-z0-9-]{1,32}$")
    nodes: list[str] | None = Field(
        default=None, description="node ids to play on; omitted = every node")


class DeliveryOut(BaseModel):
    node_id: str
    commune: str
    status: str
    planned_at: datetime
    actual_start: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    start_offset_ms: float | None = Field(description="actual minus planned start")
    detail: str


class AnnouncementOut(BaseModel):
    id: int
    title: str
    text: str
    created_at: datetime
    start_at: datetime
    priority: str
    status: str
    engine_requested: str
    engine_used: str | None
    fallback_reason: str | None
    media_sha256: str | None
    media_codec: str | None
    media_size: int | None
    duration_s: float | None
    deliveries: list[DeliveryOut]
    summary: dict[str, int]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
    mqtt: bool
    version: str


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
        url = f"/api/alerts/{r.alert_id}/snapshot" if r.snapshot_sha256 else None  # type: ignore[attr-defined]
        return cls(**data, snapshot_url=url)
