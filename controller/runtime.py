"""The controller's running parts, wired once: database, media store, MQTT link and
APScheduler. The API routes and the CLI use this object; nothing else holds state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controller import localtime
from controller.alert_bus import AlertBus, AlertEvent
from controller.db import Database, migrate
from controller.domain import Targets
from controller.live import LiveDesk
from controller.media_store import MediaStore
from controller.metrics import Metrics
from controller.models import Announcement
from controller.mqtt_link import MqttLink
from controller.relay import TICK_S as RELAY_TICK_S
from controller.relay import RelayRunner
from controller.security import LoginRateLimiter, load_or_create_secret
from controller.services import alerts, communes, effects, fleet, ingest, leadership, stats
from controller.services import targets as target_rules
from controller.services.content import ContentRenderer
from controller.services.effects import Effects
from controller.services.operations import OperationDesk
from controller.services.plans import CompileContext, compile_plans, media_ref
from controller.services.users import ensure_bootstrap_admin
from controller.settings import Settings
from mqtt_contract import (
    ALERT,
    ALL_CMD,
    MEDIA,
    MEDIA_REQUEST,
    NODE_CMD,
    NODE_MEDIA,
    PLAYBACK,
    REPLY,
    STATUS,
    TELEMETRY,
    ZONE_CMD,
    ZONE_MEDIA,
    Alert,
    Command,
    ContractError,
    MediaRef,
    MediaRequest,
    PlaybackReport,
    Reply,
    Status,
    Telemetry,
    TopicInfo,
)

log = logging.getLogger(__name__)
RESEND_COOLDOWN_S = 2.0
RESEND_MEMORY = 10_000
"""At most this many (node, media) resends are remembered; the oldest go first."""
PLAN_AFTER_COMMAND_S = 8.0
"""An emergency's plans (the safety net for a node that missed its command) go out this
long after the command: after the start wave (a fresh clip reaches 1,000 nodes within
about 5 s; a thousand plans compiled, signed and applied in the middle of it slowed it),
and well inside a node's grace for a late item (edge/scheduler.LATE_GRACE_S, 30 s)."""
BROADCAST_MEMORY_S = 3600.0


def same_node(info: TopicInfo, claimed: str) -> None:
    """A payload speaks for the node whose topic it came on (the ACL vouches for that)."""
    if info.node != claimed:
        raise ContractError(f"payload for node {claimed!r} on {info.node!r}'s topic")


class RecentResends:
    """Which (node, media) were re-sent within the cooldown: a node asking twice in a row
    (its request crossed the chunks) gets one resend. Bounded: at most ``capacity``
    entries, the oldest evicted, so a fleet of chatty nodes cannot grow it for ever."""

    def __init__(self, cooldown_s: float = RESEND_COOLDOWN_S,
                 capacity: int = RESEND_MEMORY) -> None:
        self.cooldown_s, self.capacity = cooldown_s, capacity
        self._at: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._at)

    def claim(self, key: tuple[str, str], now: float | None = None) -> bool:
        """True if ``key`` may be re-sent now (and remember that it was)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            last = self._at.pop(key, None)
            if last is not None and now - last < self.cooldown_s:
                self._at[key] = last
                return False
            self._at[key] = now
            while len(self._at) > self.capacity:
                self._at.popitem(last=False)
            return True


class RecentBroadcasts(RecentResends):
    """Which (commune or zone topic, media) went out within the memory: a second
    broadcast of the same clip to the same topic is skipped (its nodes hold it). Kept in
    memory: a restarted controller broadcasts once more, which is only a little waste."""

    def __init__(self) -> None:
        super().__init__(cooldown_s=BROADCAST_MEMORY_S, capacity=RESEND_MEMORY)


class PlanLog:
    """Whose plans went out, in order: a deferred publish whose targets were all
    published again since it was queued (an emergency stopped before its safety net went
    out) is dropped, not sent twice."""

    EVERY = "*"

    def __init__(self) -> None:
        self._seq = 0
        self._last: dict[str, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def _keys(cls, targets: Iterable[Targets] | None) -> list[str]:
        return [cls.EVERY] if targets is None else [t.model_dump_json() for t in targets]

    def mark(self, targets: Iterable[Targets] | None) -> int:
        """``targets``' plans go out now (None: every node's); returns the mark."""
        with self._lock:
            self._seq += 1
            for key in self._keys(targets):
                self._last[key] = self._seq
            return self._seq

    def now(self) -> int:
        with self._lock:
            return self._seq

    def published_since(self, targets: Iterable[Targets] | None, mark: int) -> bool:
        with self._lock:
            if self._last.get(self.EVERY, 0) > mark:
                return True
            return targets is not None and all(
                self._last.get(key, 0) > mark for key in self._keys(targets))


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        localtime.configure(settings.timezone)
        self.db = Database(settings.resolved_database_url)
        self.media = MediaStore(settings.media_dir)
        self.content = ContentRenderer(self.media, settings.data_dir / "cache",
                                       settings.default_commune)
        self.link = MqttLink(settings.mqtt_host, settings.mqtt_port, settings.mqtt_username,
                             settings.read_mqtt_password(), settings.mqtt_client_id,
                             settings.mqtt_share_group, tls=settings.mqtt_tls_context())
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self.secret_key = settings.secret_key or load_or_create_secret(
            settings.data_dir / "secret_key")
        self.login_limiter = LoginRateLimiter(settings.login_attempts, settings.login_window_s)
        self.resends = RecentResends()
        self.broadcasts = RecentBroadcasts()
        self.alerts = alerts.AlertHub()
        self.alert_bus = AlertBus(self.db, self.alerts)
        """Alert events to the desks of every replica (PostgreSQL LISTEN/NOTIFY)."""
        self.ingest = ingest.IngestQueue()
        """Status, telemetry and playback reports waiting for the writer (one batch each
        :data:`~controller.services.ingest.FLUSH_S`)."""
        self.ingest_writer = ingest.IngestWriter(self.ingest, self._write_reports)
        self.operations = OperationDesk(lambda commune, node, cmd: self.link.send_command(
            NODE_CMD, commune, cmd, node, node=node))
        """Pushes new and changed alerts to the open desks (Server-Sent Events)."""
        self.live = LiveDesk(self.db, self.link.publish, settings, self.media.root)
        """Open live sessions and their feeds (controller/live.py)."""
        self.relay = RelayRunner(self.db, self.live)
        """Relay slots on air (controller/relay.py); ticks on the plan leader."""
        self._compile_lock = threading.Lock()
        self.plan_log = PlanLog()
        self.is_plan_leader = False
        self.metrics = Metrics(self)
        """This replica's Prometheus metrics (controller/metrics.py, ``GET /metrics``)."""
        for spec, handler in {STATUS: self._on_status, TELEMETRY: self._on_telemetry,
                              PLAYBACK: self._on_playback, REPLY: self._on_reply,
                              MEDIA_REQUEST: self._on_media_request,
                              ALERT: self._on_alert}.items():
            self.link.on(spec, handler)
        self.link.on_connected = self._republish_after_connect
        self.db.on_commit(self._after_commit)

    @property
    def horizon(self) -> timedelta:
        return timedelta(hours=self.settings.plan_horizon_h)

    @property
    def start_lead(self) -> timedelta:
        return timedelta(seconds=self.settings.start_lead_s)

    def start(self) -> None:
        migrate(self.db.url)
        with self.db.session() as s:
            ensure_bootstrap_admin(s, self.settings.admin_username, self.settings.admin_password)
            communes.ensure_commune(s, self.settings.default_commune, self.settings.timezone)
            if self.settings.fleet_dir:
                n = fleet.register_fleet(s, self.settings.fleet_dir)
                log.info("registered %d nodes from %s", n, self.settings.fleet_dir)
        self.renew_leadership()
        self.scheduler.add_job(self.renew_leadership, "interval",
                               seconds=self.settings.lease_ttl_s / 4, id="plan-lease",
                               max_instances=1, coalesce=True)
        self.scheduler.add_job(self.roll_horizon, "interval",
                               seconds=self.settings.plan_refresh_s, id="roll-horizon",
                               max_instances=1, coalesce=True)
        self.scheduler.add_job(self.sample_online, "interval",
                               seconds=self.settings.online_sample_s, id="online-sample",
                               max_instances=1, coalesce=True)
        self.scheduler.add_job(self._relay_tick, "interval", seconds=RELAY_TICK_S, id="relay",
                               max_instances=1, coalesce=True)
        self.scheduler.start()  # before the link: its first connect queues a job here
        self.ingest_writer.start()
        self.alert_bus.start()
        self.link.start()

    def stop(self) -> None:
        self.relay.stop()
        self.live.stop_all()
        self.scheduler.shutdown(wait=False)
        self.link.stop()
        self.ingest_writer.stop()  # what arrived before the link closed is written
        self.alert_bus.stop()
        self.db.dispose()

    def _relay_tick(self) -> None:
        if self.is_plan_leader:
            self.relay.tick()

    def renew_leadership(self) -> bool:
        """Take or keep the plan-compiler lease (one replica rolls the horizon). A replica
        that takes it over from another publishes every plan at once: the one before it
        may have died between a commit and its plans (SIGKILL), and plans must not wait
        for the next roll of the horizon."""
        was_leader = self.is_plan_leader
        try:
            with self.db.session() as s:
                self.is_plan_leader = leadership.acquire(
                    s, leadership.PLAN_COMPILER, self.settings.mqtt_client_id,
                    timedelta(seconds=self.settings.lease_ttl_s))
        except Exception:  # database away: no longer sure to hold it
            log.exception("renewing the plan-compiler lease failed")
            self.is_plan_leader = False
        if self.is_plan_leader and not was_leader:
            log.info("%s holds the plan-compiler lease", self.settings.mqtt_client_id)
            if self.scheduler.running:
                self._republish_after_connect()
        elif was_leader and not self.is_plan_leader:
            log.warning("%s lost the plan-compiler lease", self.settings.mqtt_client_id)
        return self.is_plan_leader

    def roll_horizon(self) -> None:
        """Recompile every plan so the 48 h window moves on; the lease holder only."""
        if self.is_plan_leader:
            self.publish_plans()

    def sample_online(self) -> None:
        """Record how many nodes are online (the dashboard's chart); the lease holder
        only, so replicas do not write the same moment twice."""
        if self.is_plan_leader:
            with self.db.session() as s:
                stats.record_online(s, self.settings.online_sample_days)

    def _republish_after_connect(self) -> None:
        """After a (re)connection the plans go out again: the horizon may have rolled while
        the link was down, and a restarted controller resumes where it stood. Called on
        the MQTT network thread: it only queues the work on the scheduler (one job, however
        often the link flaps) and returns."""
        self.scheduler.add_job(self._publish_plans_logged, args=[None], id="republish",
                               replace_existing=True, misfire_grace_time=None)

    # plans, media and commands: the effects of committed changes ------------------------
    def _after_commit(self, session: Session) -> None:
        """The one post-commit step: what the committed change implies goes out now."""
        fx = effects.take(session)
        if fx:
            try:
                self.apply(fx)
            except Exception:  # committed is committed: the horizon roll sends plans again
                log.exception("sending the effects of a change failed")

    def apply(self, fx: Effects) -> None:
        """Media first (a command finds it on its way), then commands, then plans. Each
        distinct target is resolved once (an emergency names the same one twice)."""
        reach: dict[str, list[target_rules.Address]] = {}

        def nodes_of(targets: Targets) -> list[target_rules.Address]:
            key = targets.model_dump_json()
            if key not in reach:
                with self.db.session() as s:
                    reach[key] = target_rules.addresses(s, targets)
            return reach[key]

        for announcement_id, targets in fx.media:
            self._broadcast_media(announcement_id, targets, nodes_of(targets))
        for targets, command in fx.commands:
            self._send_commands(targets, command, nodes_of(targets))
        plans = fx.plans_to_publish
        if plans is not None and not plans:
            return
        if fx.plans_later:
            self.scheduler.add_job(self._publish_plans_unless_done, "date",
                                   args=[plans, self.plan_log.now()],
                                   run_date=datetime.now(UTC)
                                   + timedelta(seconds=PLAN_AFTER_COMMAND_S),
                                   misfire_grace_time=None)
        else:
            self.publish_plans(plans)

    def publish_plans(self, targets: Iterable[Targets] | None = None) -> int:
        """Recompile and publish (retained) the plans of nodes matched by any of ``targets``
        (all nodes when None). Returns how many plans went out."""
        targets = None if targets is None else list(targets)
        with self._compile_lock, self.db.session() as s:
            leadership.hold_compile_lock(s)
            self.plan_log.mark(targets)
            ctx = CompileContext.load(s, self.horizon)
            plans = compile_plans(s, ctx, targets)
            for commune, plan in plans:
                self.link.publish_plan(commune, plan)
            return len(plans)

    def _publish_plans_unless_done(self, targets: list[Targets] | None, mark: int) -> None:
        """A deferred publish: skipped when those plans went out again since ``mark``."""
        if self.plan_log.published_since(targets, mark):
            log.debug("deferred plans skipped: published since")
            return
        self._publish_plans_logged(targets)

    def _publish_plans_logged(self, targets: list[Targets] | None) -> None:
        try:
            self.publish_plans(targets)
        except Exception:
            log.exception("publishing plans failed")

    def _broadcast_media(self, announcement_id: int, targets: Targets,
                         nodes: list[target_rules.Address]) -> None:
        """Publish an announcement's audio once per zone (when only zones are targeted) or
        once per commune: the broker fans it out, and nodes elsewhere on 3G are spared.
        A topic that carried the same clip within the broadcast memory is skipped: its
        nodes hold it (one that does not asks for its missing chunks, ``media/request``),
        and a held emergency does not push the whole clip through every 4G link again."""
        with self.db.session() as s:
            a = s.get(Announcement, announcement_id)
            if a is None or a.media_sha256 is None:
                return
            ref = media_ref(a)
        read = self._chunk_reader(ref)
        for commune in sorted({n.commune for n in nodes}):
            if targets.zones_only:
                present = {z for n in nodes if n.commune == commune for z in n.zones}
                for zone in sorted(set(targets.zones) & present):
                    if self.broadcasts.claim((f"{commune}/zone/{zone}", ref.sha256)):
                        self.link.publish_media(ZONE_MEDIA, commune, ref, read, zone=zone)
            elif self.broadcasts.claim((commune, ref.sha256)):
                self.link.publish_media(MEDIA, commune, ref, read)
                log.info("media %s (%d chunks) sent to %s", ref.sha256[:12], ref.chunks,
                         commune)

    def _send_commands(self, targets: Targets, command: Command,
                       nodes: list[target_rules.Address]) -> int:
        """Send ``command`` to every target (one publish per commune, zone or node)."""
        topics_sent = set()
        for node in nodes:
            if targets.all:
                spec, params = ALL_CMD, {}
            elif zone := next((z for z in targets.zones if z in node.zones), None):
                spec, params = ZONE_CMD, {"zone": zone}
            else:
                spec, params = NODE_CMD, {"node": node.node_id}
            key = spec.topic(node.commune, **params)
            if key not in topics_sent:
                topics_sent.add(key)
                reply = node.node_id if spec is NODE_CMD else None
                self.link.send_command(spec, node.commune, command, reply, **params)
        log.info("command %s %s sent on %d topics to %d nodes", command.kind.value,
                 command.item_id or command.id, len(topics_sent), len(nodes))
        return len(nodes)

    def _chunk_reader(self, ref: MediaRef):  # type: ignore[no-untyped-def]
        return lambda i: self.media.read_chunk(ref.sha256, ref.codec, i, ref.chunk_size)

    # ingest ------------------------------------------------------------------------------
    def _on_status(self, info: TopicInfo, status: Status) -> None:
        same_node(info, status.node)
        self._queue_report(ingest.Incoming(info.commune, status))

    def _on_telemetry(self, info: TopicInfo, telemetry: Telemetry) -> None:
        same_node(info, telemetry.node)
        self._queue_report(ingest.Incoming(info.commune, telemetry))

    def _on_playback(self, info: TopicInfo, report: PlaybackReport) -> None:
        same_node(info, report.node)
        self._queue_report(ingest.Incoming(info.commune, report))

    def _queue_report(self, item: ingest.Incoming) -> None:
        """To the batch writer; when its queue is full, written here and now."""
        self.metrics.report_taken(item)
        if not self.ingest.put(item):
            with self.db.session() as s:
                ingest.write_one(s, item)

    def _write_reports(self, batch: list[ingest.Incoming]) -> None:
        """One transaction for the batch. If it fails (another replica stored one of its
        reports or created one of its nodes at the same moment, or one report the
        database refuses), each item on its own: one bad report never costs the others."""
        try:
            with self.db.session() as s:
                ingest.write_batch(s, batch)
            return
        except IntegrityError:
            log.debug("a batch of %d reports met another replica's writes", len(batch))
        except Exception:
            log.exception("a batch of %d reports failed; writing them one by one",
                          len(batch))
        for item in batch:
            try:
                with self.db.session() as s:
                    ingest.write_one(s, item)
            except IntegrityError:
                log.debug("%s report stored by another replica", item.kind)
            except Exception:
                log.exception("a %s report from %s could not be stored", item.kind,
                              item.payload.node)

    def _on_alert(self, info: TopicInfo, alert: Alert) -> None:
        same_node(info, alert.node)
        with self.db.session() as s:
            record = alerts.store_alert(s, info.commune, alert, self.media)
            if record is not None:
                self.alert_bus.announce(s, AlertEvent.alert, record)
        if record is not None:
            self.metrics.alert_stored(alert.kind)
            log.info("alert %s from %s/%s: %s", alert.id, alert.node, alert.camera,
                     alert.kind)

    def _on_reply(self, info: TopicInfo, reply: Reply) -> None:
        same_node(info, reply.node)
        self.operations.on_reply(info.commune, reply.node, reply)

    def _on_media_request(self, info: TopicInfo, request: MediaRequest) -> None:
        """Re-send the chunks one node lacks, on its own media topic: media that exists
        only, each chunk once (the contract deduplicates the list), one resend per
        (node, media) per cooldown, and no more bytes than the node's budget allows."""
        same_node(info, request.node)
        ref = self._known_media(request.sha256)
        if ref is None:
            log.debug("%s asked for unknown media %s", request.node, request.sha256[:12])
            return
        node = f"{info.commune}/{request.node}"
        if not self.resends.claim((node, request.sha256)):
            return
        chunks = ([i for i in request.chunks if i < ref.chunks] if request.chunks
                  else list(range(ref.chunks)))
        granted = self.media.resend_budget.take(node, len(chunks), ref.chunk_size)
        if granted < len(chunks):
            log.warning("%s asked for %d chunks of %s; %d sent (its resend budget)",
                        node, len(chunks), ref.sha256[:12], granted)
        if granted:
            self.link.publish_media(NODE_MEDIA, info.commune, ref, self._chunk_reader(ref),
                                    chunks[:granted], node=request.node)

    def _known_media(self, sha256: str) -> MediaRef | None:
        """The ref of media the controller holds. The store answers first (a stat, no
        memo that random requests could grow); only then the database."""
        if not self.media.has(sha256):
            return None
        with self.db.session() as s:
            a = s.scalar(select(Announcement).where(Announcement.media_sha256 == sha256)
                         .limit(1))
            return media_ref(a) if a else None
