"""Camera alerts from nodes: stored once by id, snapshot kept as a content-addressed file."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controller.media_store import MediaStore
from controller.models import CameraAlertRecord
from mqtt_contract import Alert, ContractError

JPEG_MAGIC = b"\xff\xd8\xff"


def decode_snapshot(b64: str) -> bytes:
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ContractError(f"snapshot is not base64: {exc}") from None
    if not data.startswith(JPEG_MAGIC):
        raise ContractError("snapshot is not a JPEG")
    return data


def record_alert(session: Session, commune: str, alert: Alert, store: MediaStore) -> bool:
    """Store ``alert`` once; False when its id is already known (a replay)."""
    if session.scalar(select(CameraAlertRecord.id).where(CameraAlertRecord.alert_id == alert.id)):
        return False
    snapshot = None
    if alert.snapshot_jpeg_b64:
        snapshot, _ = store.add_bytes(decode_snapshot(alert.snapshot_jpeg_b64), "jpg")
    try:
        with session.begin_nested():
            session.add(CameraAlertRecord(
                alert_id=alert.id, commune=commune, node_id=alert.node, camera=alert.camera,
                kind=alert.kind, at=alert.at, confidence=alert.confidence,
                boxes=[b.model_dump() for b in alert.boxes], snapshot_sha256=snapshot))
    except IntegrityError:
        return False  # another controller replica stored it first
    return True


def list_alerts(session: Session, *, node: str | None = None, camera: str | None = None,
                kind: str | None = None, state: str | None = None,
                since: datetime | None = None, until: datetime | None = None,
                limit: int = 100) -> list[CameraAlertRecord]:
    q = select(CameraAlertRecord).order_by(CameraAlertRecord.at.desc()).limit(limit)
    filters = {"node_id": node, "camera": camera, "kind": kind, "state": state}
    for column, value in filters.items():
        if value is not None:
            q = q.where(getattr(CameraAlertRecord, column) == value)
    if since is not None:
        q = q.where(CameraAlertRecord.at >= since)
    if until is not None:
        q = q.where(CameraAlertRecord.at < until)
    return list(session.scalars(q))


def get_alert(session: Session, alert_id: str) -> CameraAlertRecord | None:
    return session.scalar(select(CameraAlertRecord).where(CameraAlertRecord.alert_id == alert_id))
