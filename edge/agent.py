"""The edge agent: the node's parts, wired to one MQTT link on one event loop.

Life of a node (DESIGN.md): connect out with its own account (the will marks it
offline), publish a retained "online", subscribe to what the contract addresses to it;
keep the newest plan (:mod:`edge.plans`), gather media (:mod:`edge.media`), let the local
scheduler fire at absolute times (:mod:`edge.scheduler`), answer commands
(:mod:`edge.commands`), put every report and alert in the outbox first
(:mod:`edge.outbox`), send telemetry (:mod:`edge.telemetry`). This module only wires
them: each message goes through the contract's :class:`~mqtt_contract.Dispatcher` to the
part that handles it, and every outgoing message is a contract ``Message``.

Everything but the cameras runs on one :class:`~edge.loop.Reactor`. An agent on a Pi
owns its loop; the simulator runs many agents on one loop per process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.amplifier import Amplifier
from edge.audio_output import AudioOutput, make_output
from edge.commands import CommandHandler
from edge.live import LivePlayer
from edge.loop import Reactor, Timer
from edge.media import MediaFetcher
from edge.media_cache import MediaCache
from edge.operations import NodeOperations
from edge.outbox import Outbox
from edge.plans import PlanKeeper
from edge.scheduler import Job, LocalScheduler
from edge.store import NodeStore
from edge.telemetry import ClockSource, build_telemetry
from edge.transport import LinkEvents, LinkSettings, MqttTransport
from edge.trust import Gate
from firmware_config.schema import NodeConfig
from mqtt_contract import (
    ALERT,
    COMMAND_TOPICS,
    LIVE_TOPICS,
    MEDIA_TOPICS,
    NODE_CMD,
    PLAN,
    PLAYBACK,
    REPLY,
    SOFTWARE_VERSION,
    STATUS,
    TELEMETRY,
    Alert,
    Command,
    Dispatcher,
    MediaRef,
    Message,
    Plan,
    PlaybackEvent,
    PlaybackReport,
    Reply,
    Status,
    Telemetry,
    TopicInfo,
    node_subscriptions,
)

log = logging.getLogger(__name__)


def wants_reply(info: TopicInfo, properties: Any) -> bool:
    """A command to this node is answered; one to a zone or the whole commune only when
    it asks (an MQTT 5 Response Topic): a thousand nodes answering an emergency nobody
    asked them to answer would crowd the broker and the controller in the very second
    the speakers must start, and their playback reports say what happened anyway."""
    return info.spec is NODE_CMD or bool(getattr(properties, "ResponseTopic", None))


class EdgeAgent:
    def __init__(self, config: NodeConfig, output: AudioOutput | None = None,
                 loop: Reactor | None = None, clock: ClockSource | None = None,
                 config_path: Path | None = None,
                 on_restart: Callable[[], None] | None = None) -> None:
        """``config_path``: the file ``config`` came from (a pushed config replaces it);
        ``on_restart``: how to exit for a supervisor to start the agent again (None: the
        node refuses a restart command)."""
        self.config = config
        self.node, self.commune = config.node_id, config.commune
        self._own_loop = loop is None
        self.loop = loop or Reactor(f"node-{self.node}")
        self.clock = clock or ClockSource()
        storage = config.storage_dir
        storage.mkdir(parents=True, exist_ok=True)
        self.store = NodeStore(storage / "node.sqlite3")
        self.cache = MediaCache(storage, derived=storage / "prepared")
        self.output = output or make_output(config.audio.output, config.audio.file_dir,
                                            config.audio.device, config.audio.realtime)
        amp = config.amplifier
        self.amplifier = Amplifier(amp.gpio_pin, amp.warmup_s, amp.active_high)
        self.started_at = time.monotonic()
        self.connected = threading.Event()
        """Set once the broker acknowledged the node's subscriptions."""
        self._stop = threading.Event()
        self._telemetry_timer: Timer | None = None

        self.transport = self._make_transport()
        self.outbox = Outbox(self.store, self._publish)
        self.media = MediaFetcher(self.loop, self.cache, self.commune, self.node,
                                  config.media_wait_s, self._publish,
                                  lambda ref: self.scheduler.wake())
        self.scheduler = LocalScheduler(
            self.loop, self.store, self.cache, self.output, self.amplifier,
            self._report_playback, self.media.want, self.volume, config.quiet_hours,
            config.timezone, config.prepare_ahead_s, storage / "prepared")
        self.live = LivePlayer(self.loop, self.output, self.scheduler, self._report_live,
                               self.volume)
        """Live sessions: frames on the ``live`` topics, played in step (edge/live.py)."""
        self.gate = Gate(self.node, self.commune, config.zones, config.trusted_keys,
                         self.store)
        """Checks every plan and command's signature before anything is applied."""
        self.plans = PlanKeeper(self.node, self.store, self.cache, self.scheduler,
                                self.media.want, self.gate)
        self.operations = NodeOperations(
            self.loop, self.node, config_path, lambda: self.config, self.reconnect_with,
            self._send_reply, on_restart, lambda: self.plans.version)
        self.commands = CommandHandler(self.node, self.store, self.scheduler, self.media.want,
                                       self.cache.put_file, self.resync, storage / "tone",
                                       self.gate, self.operations, self.live)
        self.cameras = self._camera_host() if config.cameras else None
        self.dispatcher = Dispatcher(f"node {self.node}")
        self.dispatcher.on(PLAN, self._on_plan)
        for spec in COMMAND_TOPICS:
            self.dispatcher.on(spec, self._on_command)
        for spec in MEDIA_TOPICS:
            self.dispatcher.on(spec, self._on_chunk)
        for spec in LIVE_TOPICS:
            self.dispatcher.on(spec, lambda info, data, props: self.live.frame(data))

    def _make_transport(self) -> MqttTransport:
        return MqttTransport(self.loop, self._link_settings(), LinkEvents(
            self._on_connected, self._on_disconnected, self._on_message, self._on_published,
            self.connected.set),
            will=self._status_message(online=False))

    def _publish(self, msg: Message, properties: Any = None) -> int | None:
        """Through whichever link is current (a config trial replaces it)."""
        return self.transport.publish(msg, properties)

    def reconnect_with(self, config: NodeConfig) -> None:
        """Replace the MQTT link with one made from ``config`` (a pushed config on trial,
        or the previous one restored); the other parts keep running as they are."""
        self.config = config
        old, self.transport = self.transport, self._make_transport()
        if old.connected:
            old.close()
        else:
            old.drop()
        self._on_disconnected()
        self.transport.start()

    def _link_settings(self) -> LinkSettings:
        cfg = self.config.mqtt
        return LinkSettings(cfg.host, cfg.port, f"loaxa-node-{self.commune}-{self.node}",
                            self.config.username, cfg.read_password(), cfg.keepalive_s,
                            cfg.tls, cfg.ca_file, cfg.cert_file, cfg.key_file)

    def _camera_host(self) -> Any:
        from edge.camera.host import CameraHost

        return CameraHost(self.loop, self.node, list(self.config.cameras), self.scheduler,
                          self.cache.put_file, self.send_alert,
                          self.config.storage_dir / "reminders")

    # settings ---------------------------------------------------------------------------
    def volume(self) -> int:
        stored = self.store.get_setting("volume")
        return int(stored) if stored is not None else self.config.audio.volume

    @property
    def dropped_messages(self) -> int:
        return self.dispatcher.dropped

    # lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start on the loop (which an agent of its own starts too): plan first, network
        second, so a node without a link still plays its day."""
        if self._own_loop:
            self.loop.start()
        self.loop.call_soon_threadsafe(self._start_parts)
        if self.cameras:
            self.cameras.start()
        log.info("node %s started (commune %s, zones %s)", self.node, self.commune,
                 ",".join(self.config.zones) or "-")

    def _start_parts(self) -> None:
        self.plans.restore()
        self._keep_named_media()
        self.scheduler.start()
        self.operations.resume()
        self.transport.start()

    def stop(self, graceful: bool = True) -> None:
        """Stop; ``graceful`` publishes offline itself, otherwise the broker's will does."""
        self._stop.set()
        if self.cameras:
            self.cameras.stop()
        try:
            self.loop.run_in_loop(lambda: self._stop_parts(graceful))
        except TimeoutError:
            log.error("node %s: the loop did not stop its parts in time", self.node)
        if self._own_loop:
            self.loop.stop()
        self.store.close()

    def _stop_parts(self, graceful: bool) -> None:
        if self._telemetry_timer:
            self._telemetry_timer.cancel()
        self.live.close()
        self.scheduler.close()
        if graceful:
            self.transport.close(final=self._status_message(online=False))
        else:
            self.transport.drop()
        self.connected.clear()

    def resync(self) -> None:
        """Re-announce ourselves and fetch the retained plan and missing media again."""
        plan = PLAN.filter(self.commune, node=self.node)
        self.transport.unsubscribe(plan)
        self.transport.subscribe([(plan, PLAN.qos)])
        self.media.resync()

    # link events (loop) ---------------------------------------------------------------
    def _on_connected(self, session_present: bool) -> None:
        log.info("connected to the broker (session present: %s)", session_present)
        self.transport.publish(self._status_message(online=True))
        self.transport.subscribe(node_subscriptions(self.commune, self.node,
                                                    list(self.config.zones)))
        self.outbox.online()
        self.media.set_online(True)
        self._telemetry_tick()
        self.operations.link_up()

    def _on_disconnected(self) -> None:
        self.connected.clear()
        self.outbox.offline()
        self.media.set_online(False)

    def _on_message(self, topic: str, payload: bytes, properties: Any) -> None:
        self.dispatcher.dispatch(topic, payload, properties)

    def _on_published(self, mid: int) -> None:
        self.outbox.acknowledged(mid)

    # handlers (loop) --------------------------------------------------------------------
    def _on_plan(self, info: TopicInfo, plan: Plan, properties: Any) -> None:
        if self.plans.apply(plan):
            self._keep_named_media()
            self.publish_telemetry()  # tells the controller at once which plan we hold

    def _keep_named_media(self) -> None:
        """partial/ keeps only media the plan (or, lately, a command) names."""
        plan = self.plans.current
        self.media.keep_only({i.media.sha256 for i in plan.items} if plan else set())

    def _on_command(self, info: TopicInfo, cmd: Command, properties: Any) -> None:
        reply = self.commands.handle(cmd)
        if reply is None:  # refused by the gate, or answered later (a config push)
            self.operations.answer_later(cmd.id, properties)
            return
        if wants_reply(info, properties):
            self._send_reply(reply, properties)

    def _send_reply(self, reply: Reply, request_properties: Any) -> None:
        self.transport.publish(REPLY.message(self.commune, reply, node=self.node),
                               self.transport.reply_properties(request_properties))

    def _on_chunk(self, info: TopicInfo, data: bytes, properties: Any) -> None:
        assert info.sha256 is not None and info.chunk is not None
        self.media.chunk(info.sha256, info.chunk, data)

    # reports and alerts ------------------------------------------------------------------
    def _report_playback(self, job: Job, event: PlaybackEvent, actual_at: float,
                         duration: float | None, detail: str) -> None:
        log.info("%s %s (late by %.3f s)", job.item_id, event.value, actual_at - job.start_at)
        self._report(job.item_id, event, job.start_at, actual_at, duration, detail)

    def _report_live(self, item_id: str, event: PlaybackEvent, planned_at: float,
                     actual_at: float, duration: float | None, detail: str) -> None:
        log.info("%s %s", item_id, event.value)
        self._report(item_id, event, planned_at, actual_at, duration, detail)

    def _report(self, item_id: str, event: PlaybackEvent, planned_at: float,
                actual_at: float, duration: float | None, detail: str) -> None:
        """A playback report into the outbox (plan items, commands, live sessions)."""
        report = PlaybackReport(
            node=self.node, item_id=item_id, event=event,
            planned_at=datetime.fromtimestamp(planned_at, UTC),
            actual_at=datetime.fromtimestamp(actual_at, UTC), duration_s=duration,
            detail=detail, clock_offset_ms=self.clock.state().offset_ms)
        self.outbox.put(report.id, PLAYBACK.message(self.commune, report, node=self.node))

    def send_alert(self, alert: Alert) -> None:
        """A camera alert, into the outbox (on the loop)."""
        self.outbox.put(alert.id, ALERT.message(self.commune, alert, node=self.node))

    def want_media(self, ref: MediaRef) -> None:
        self.media.want(ref)

    # telemetry ------------------------------------------------------------------------
    def telemetry(self) -> Telemetry:
        playing = self.scheduler.now_playing()
        title = (playing.title or playing.item_id) if playing else self.live.now_playing()
        return build_telemetry(
            self.node, self.started_at, self.config.storage_dir, self.volume(),
            title, self.plans.version,
            self.clock.state(), self.cache.count(), self.outbox.pending_count(),
            self.cameras.stats() if self.cameras else [], self.gate.counts())

    def publish_telemetry(self) -> None:
        self.transport.publish(TELEMETRY.message(self.commune, self.telemetry(),
                                                 node=self.node))

    def _telemetry_tick(self) -> None:
        if self._telemetry_timer:
            self._telemetry_timer.cancel()
        if not self.transport.connected:
            self._telemetry_timer = None
            return
        try:
            self.publish_telemetry()
        except Exception:  # a heartbeat that cannot be built must not stop the next ones
            log.exception("telemetry could not be built; trying again next tick")
        finally:
            self._telemetry_timer = self.loop.call_later(self.config.telemetry_interval_s,
                                                         self._telemetry_tick)

    def _status_message(self, online: bool) -> Message:
        status = Status(node=self.node, online=online, zones=self.config.zones,
                        version=SOFTWARE_VERSION if online else None)
        return STATUS.message(self.commune, status, node=self.node)
