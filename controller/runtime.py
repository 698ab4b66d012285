"""The controller's running parts, wired once: database, media store, MQTT link and
APScheduler. The API routes and the CLI use this object; nothing else holds state.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from controller.db import Database, migrate
from controller.media_store import MediaStore
from controller.models import Node
from controller.mqtt_link import MqttLink
from controller.services import alerts, fleet, playback
from controller.services.plans import compile_plan, media_ref
from controller.settings import Settings
from mqtt_contract import (
    Alert,
    ContractError,
    MediaRequest,
    PlaybackReport,
    Status,
    Telemetry,
    TopicInfo,
    Topics,
    parse,
)

log = logging.getLogger(__name__)
RESEND_COOLDOWN_S = 2.0


def same_node(info: TopicInfo, claimed: str) -> None:
    """A payload speaks for the node whose topic it came on (the ACL vouches for that)."""
    if info.target != claimed:
        raise ContractError(f"payload for node {claimed!r} on {info.target!r}'s topic")


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.resolved_database_url)
        self.media = MediaStore(settings.media_dir)
        self.link = MqttLink(settings.mqtt_host, settings.mqtt_port, settings.mqtt_username,
                             settings.read_mqtt_password(), settings.mqtt_client_id,
                             settings.mqtt_share_group)
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self._recent_resends: dict[tuple[str, str], float] = {}
        self._resend_lock = threading.Lock()
        self.link.on("status", self._on_status)
        self.link.on("telemetry", self._on_telemetry)
        self.link.on("playback", self._on_playback)
        self.link.on("reply", self._on_reply)
        self.link.on("media/request", self._on_media_request)
        self.link.on("alert", self._on_alert)

    @property
    def horizon(self) -> timedelta:
        return timedelta(hours=self.settings.plan_horizon_h)

    @property
    def start_lead(self) -> timedelta:
        return timedelta(seconds=self.settings.start_lead_s)

    def start(self) -> None:
        migrate(self.db.url)
        if self.settings.fleet_dir:
            with self.db.session() as s:
                n = fleet.register_fleet(s, self.settings.fleet_dir)
            log.info("registered %d nodes from %s", n, self.settings.fleet_dir)
        self.link.start()
        self.scheduler.add_job(self.republish_all_plans, "interval",
                               seconds=self.settings.plan_refresh_s, id="roll-horizon",
                               max_instances=1, coalesce=True)
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.shutdown(wait=False)
        self.link.stop()
        self.db.dispose()

    # plans -------------------------------------------------------------------------------
    def publish_plans(self, node_pks: list[int]) -> None:
        """Recompile and publish (retained) the plans of these nodes."""
        with self.db.session() as s:
            for node in s.scalars(select(Node).where(Node.id.in_(node_pks))):
                self.link.publish_plan(node.commune, compile_plan(s, node, self.horizon))

    def republish_all_plans(self) -> None:
        with self.db.session() as s:
            pks = list(s.scalars(select(Node.id)))
        self.publish_plans(pks)

    def broadcast_media(self, communes: set[str], sha256: str, size: int, codec: str,
                        duration_s: float) -> None:
        """Publish a file's chunks once per commune: the broker fans them out to nodes."""
        from mqtt_contract import MediaRef

        ref = MediaRef(sha256=sha256, size=size, codec=codec, duration_s=duration_s)
        for commune in sorted(communes):
            topics = Topics(commune)
            self.link.publish_media(lambda i, t=topics: t.media_chunk(sha256, i), ref,
                                    self._chunk_reader(ref))

    def _chunk_reader(self, ref):  # type: ignore[no-untyped-def]
        return lambda i: self.media.read_chunk(ref.sha256, ref.codec, i, ref.chunk_size)

    # ingest ------------------------------------------------------------------------------
    def _on_status(self, info: TopicInfo, payload: bytes) -> None:
        status = parse(Status, payload)
        same_node(info, status.node)
        with self.db.session() as s:
            fleet.apply_status(s, info.commune, status)

    def _on_telemetry(self, info: TopicInfo, payload: bytes) -> None:
        telemetry = parse(Telemetry, payload)
        same_node(info, telemetry.node)
        with self.db.session() as s:
            node = fleet.apply_telemetry(s, info.commune, telemetry)
            playback.mark_delivered(s, node)

    def _on_playback(self, info: TopicInfo, payload: bytes) -> None:
        report = parse(PlaybackReport, payload)
        same_node(info, report.node)
        with self.db.session() as s:
            playback.record_report(s, info.commune, report)

    def _on_alert(self, info: TopicInfo, payload: bytes) -> None:
        alert = parse(Alert, payload)
        same_node(info, alert.node)
        with self.db.session() as s:
            if alerts.record_alert(s, info.commune, alert, self.media):
                log.info("alert %s from %s/%s: %s", alert.id, alert.node, alert.camera,
                         alert.kind)

    def _on_reply(self, info: TopicInfo, payload: bytes) -> None:
        log.info("reply from %s/%s: %s", info.commune, info.target, payload[:200])

    def _on_media_request(self, info: TopicInfo, payload: bytes) -> None:
        """Re-send the chunks one node lacks, on its own media topic."""
        request = parse(MediaRequest, payload)
        same_node(info, request.node)
        key = (f"{info.commune}/{request.node}", request.sha256)
        now = time.monotonic()
        with self._resend_lock:
            if now - self._recent_resends.get(key, 0.0) < RESEND_COOLDOWN_S:
                return
            self._recent_resends[key] = now
        ref = self._known_media(request.sha256)
        if ref is None:
            log.warning("%s asked for unknown media %s", request.node, request.sha256[:12])
            return
        topics = Topics(info.commune)
        self.link.publish_media(
            lambda i: topics.node_media_chunk(request.node, request.sha256, i), ref,
            self._chunk_reader(ref), request.chunks or None)

    def _known_media(self, sha256: str):  # type: ignore[no-untyped-def]
        from controller.models import Announcement

        with self.db.session() as s:
            a = s.scalar(select(Announcement).where(Announcement.media_sha256 == sha256)
                         .limit(1))
            return media_ref(a) if a else None
