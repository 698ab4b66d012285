"""The edge agent: one MQTT connection, the plan store, the scheduler and the outbox.

Life of a node (DESIGN.md): connect out with its own account (the will marks it
offline), publish a retained "online", subscribe to its plan, commands and media; keep
the newest plan in SQLite; gather media chunks into the cache; let the local scheduler
fire at absolute times; put every report in the outbox first and delete it only when the
broker acknowledged it. Malformed input is logged and dropped: the agent keeps running.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.amplifier import Amplifier
from edge.audio_output import AudioOutput, make_output
from edge.cameras import CameraHost
from edge.clock import read_clock_state
from edge.media_cache import MediaCache
from edge.scheduler import Job, LocalScheduler
from edge.store import NodeStore
from firmware_config.schema import NodeConfig
from mqtt_contract import (
    SOFTWARE_VERSION,
    Alert,
    ClockState,
    Command,
    CommandKind,
    ContractError,
    MediaRef,
    MediaRequest,
    Payload,
    Plan,
    PlaybackEvent,
    PlaybackReport,
    Reply,
    Status,
    Telemetry,
    Topics,
    connect_properties,
    new_client,
    parse,
    parse_topic,
)

log = logging.getLogger(__name__)
STATE_KEEP_S = 7 * 24 * 3600
"""How long the outcome of an item that left the plan is remembered."""
CLOCK_STATE_TTL_S = 10.0
"""How long a reading of the clock's sync state is reused. Reading it runs chronyc or
timedatectl (a process each time); the offset moves by microseconds per second, and a
burst of reports (an emergency start, a finished clip) should not spawn one each."""
_clock_cache: tuple[float, ClockState] | None = None
_clock_lock = threading.Lock()


@dataclass
class MediaWant:
    ref: MediaRef
    first_wanted: float
    last_progress: float
    last_request: float = 0.0


class EdgeAgent:
    def __init__(self, config: NodeConfig, output: AudioOutput | None = None) -> None:
        self.config = config
        self.node = config.node_id
        self.topics = Topics(config.commune)
        storage = config.storage_dir
        storage.mkdir(parents=True, exist_ok=True)
        self.store = NodeStore(storage / "node.sqlite3")
        self.cache = MediaCache(storage)
        self.output = output or make_output(config.audio.output, config.audio.file_dir,
                                            config.audio.device, config.audio.realtime)
        amp = config.amplifier
        self.amplifier = Amplifier(amp.gpio_pin, amp.warmup_s, amp.active_high)
        self.scheduler = LocalScheduler(
            self.store, self.cache, self.output, self.amplifier, self._report_playback,
            self._want_media, self.volume, config.quiet_hours, config.timezone,
            config.prepare_ahead_s, storage / "prepared",
        )
        self.cameras = CameraHost(
            self.node, list(config.cameras), self.scheduler, self.cache.put_file,
            self._send_alert, storage / "reminders") if config.cameras else None
        self.started_at = time.monotonic()
        self.connected = threading.Event()
        self.dropped_messages = 0
        self._wants: dict[str, MediaWant] = {}
        self._wants_lock = threading.Lock()
        self._inflight: dict[int, tuple[Any, int]] = {}
        """mid → (paho's MQTTMessageInfo, outbox seq) of reports awaiting their PUBACK."""
        self._inflight_lock = threading.Lock()
        """Guards ``_inflight``; never held while calling into paho."""
        self._flush_lock = threading.Lock()
        """Serialises flushes. paho calls on_publish holding its own message lock, and
        publish() takes that lock, so on_publish must not wait for this one (deadlock)."""
        self._stop = threading.Event()
        self._housekeeper: threading.Thread | None = None
        self._outbox_busy = True
        """Something may wait in the outbox (or for its PUBACK); housekeeping skips the
        outbox query while False (a thousand idle agents in one simulator otherwise
        query SQLite two thousand times a second)."""
        self.client = self._make_client()

    # settings ---------------------------------------------------------------------------
    def clock_state(self) -> ClockState:
        """The clock's sync state, read at most once per :data:`CLOCK_STATE_TTL_S`.

        The cache is per process, not per agent: the clock belongs to the machine, and
        agents sharing a process (the simulator) share the machine.
        """
        global _clock_cache
        now = time.monotonic()
        cached = _clock_cache
        if cached is not None and now - cached[0] < CLOCK_STATE_TTL_S:
            return cached[1]
        # One thread reads; the others keep the last reading rather than wait for a
        # subprocess (this runs on paho's network thread, which must not stall).
        if not _clock_lock.acquire(blocking=cached is None):
            return cached[1]  # type: ignore[index]
        try:
            cached = _clock_cache
            if cached is None or time.monotonic() - cached[0] >= CLOCK_STATE_TTL_S:
                cached = _clock_cache = (time.monotonic(), read_clock_state())
            return cached[1]
        finally:
            _clock_lock.release()

    def volume(self) -> int:
        stored = self.store.get_setting("volume")
        return int(stored) if stored is not None else self.config.audio.volume

    # lifecycle ---------------------------------------------------------------------------
    def _make_client(self) -> Any:
        cfg = self.config.mqtt
        client = new_client(f"loaxa-node-{self.config.commune}-{self.node}",
                            self.config.username, cfg.read_password())
        will = Status(node=self.node, online=False, zones=self.config.zones)
        client.will_set(self.topics.status(self.node), will.to_bytes(), qos=1, retain=True)
        if cfg.tls:
            client.tls_set(ca_certs=str(cfg.ca_file) if cfg.ca_file else None)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        return client

    def start(self) -> None:
        plan = self.store.load_plan()
        self.scheduler.set_plan(plan)
        for item in plan.items if plan else []:
            self._note_wanted(item.media)
        self.scheduler.start()
        if self.cameras:
            self.cameras.start()
        cfg = self.config.mqtt
        self.client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive_s,
                                  clean_start=False, properties=connect_properties())
        self.client.loop_start()
        self._housekeeper = threading.Thread(target=self._housekeeping, name="housekeeping",
                                             daemon=True)
        self._housekeeper.start()
        log.info("node %s started (commune %s, zones %s)", self.node, self.config.commune,
                 ",".join(self.config.zones) or "-")

    def stop(self, graceful: bool = True) -> None:
        """Stop; ``graceful`` publishes offline itself, otherwise the broker's will does."""
        self._stop.set()
        if graceful and self.connected.is_set():
            info = self.client.publish(self.topics.status(self.node), Status(
                node=self.node, online=False, zones=self.config.zones).to_bytes(), 1, True)
            info.wait_for_publish(timeout=2)
            self.client.disconnect()
        if self.cameras:
            self.cameras.stop()
        self.client.loop_stop()
        if not graceful:
            self.client.socket() and self.client.socket().close()
        self.scheduler.close()
        if self._housekeeper:
            self._housekeeper.join(timeout=3)
        self.store.close()

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()

    # MQTT callbacks ----------------------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        log.info("connected to the broker (session present: %s)", flags.session_present)
        status = Status(node=self.node, online=True, version=SOFTWARE_VERSION,
                        zones=self.config.zones)
        client.publish(self.topics.status(self.node), status.to_bytes(), qos=1, retain=True)
        subs = self.topics.node_subscriptions(self.node, self.config.zones)
        client.subscribe([(t, 1) for t in subs])
        self.connected.set()
        with self._inflight_lock:
            self._inflight.clear()  # unacknowledged ones go again: receivers dedupe by id
        self.flush_outbox()
        with self._wants_lock:
            for want in self._wants.values():
                want.last_request = 0.0

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       props: Any) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("disconnected from the broker (%s); retrying with backoff", reason)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._inflight_lock:
            entry = self._inflight.pop(mid, None)
        if entry is not None:  # else: not a report, or acked before flush noted it (swept)
            self.store.acknowledge(entry[1])

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            self._dispatch(msg)
        except ContractError as exc:
            self.dropped_messages += 1
            log.warning("dropped message on %s: %s", msg.topic, exc)
        except Exception:
            self.dropped_messages += 1
            log.exception("dropped message on %s: handler failed", msg.topic)

    def _dispatch(self, msg: Any) -> None:
        info = parse_topic(msg.topic)
        if info.kind == "media":
            self._on_chunk(info.sha256, info.chunk, msg.payload)
        elif info.kind == "plan":
            self._on_plan(parse(Plan, msg.payload))
        elif info.kind == "cmd":
            self._on_command(parse(Command, msg.payload), msg.properties)
        else:
            raise ContractError(f"nothing handles {msg.topic}")

    # plan ---------------------------------------------------------------------------------
    def _on_plan(self, plan: Plan) -> None:
        if plan.node != self.node:
            raise ContractError(f"plan for {plan.node!r} arrived at {self.node!r}")
        if not self.store.save_plan_if_newer(plan):
            log.debug("plan v%d is not newer than ours; ignored", plan.version)
            return
        log.info("plan v%d applied: %d items", plan.version, len(plan.items))
        for item in plan.items:
            self._note_wanted(item.media)
        self.scheduler.set_plan(plan)
        self.cache.prune({i.media.sha256 for i in plan.items})
        self.store.forget_item_states({i.id for i in plan.items}, time.time() - STATE_KEEP_S)
        if self.connected.is_set():
            self.publish_telemetry()  # tells the controller at once which plan we hold

    # media ---------------------------------------------------------------------------------
    def _note_wanted(self, ref: MediaRef) -> None:
        if self.cache.complete(ref):
            return
        now = time.monotonic()
        with self._wants_lock:
            self._wants.setdefault(ref.sha256, MediaWant(ref, now, now))

    def _want_media(self, ref: MediaRef) -> None:
        """Called by the scheduler when a due job lacks its media."""
        self._note_wanted(ref)

    def _on_chunk(self, sha: str | None, index: int | None, data: bytes) -> None:
        assert sha is not None and index is not None
        self.cache.add_chunk(sha, index, data)
        with self._wants_lock:
            want = self._wants.get(sha)
            if want:
                want.last_progress = time.monotonic()
        if want and self.cache.complete(want.ref):
            with self._wants_lock:
                self._wants.pop(sha, None)
            self.scheduler.wake()

    def _request_missing_media(self) -> None:
        """Ask for chunks that the broadcast did not bring (node was offline, or joined late)."""
        if not self.connected.is_set():
            return
        now = time.monotonic()
        wait = self.config.media_wait_s
        with self._wants_lock:
            wants = list(self._wants.values())
        for want in wants:
            if self.cache.complete(want.ref):
                with self._wants_lock:
                    self._wants.pop(want.ref.sha256, None)
                self.scheduler.wake()
                continue
            quiet = now - want.last_progress >= wait and now - want.last_request >= wait
            if quiet:
                missing = self.cache.missing_chunks(want.ref)
                request = MediaRequest(node=self.node, sha256=want.ref.sha256, chunks=missing)
                self.client.publish(self.topics.media_request(self.node), request.to_bytes(), 1)
                want.last_request = now
                log.info("asked for %d missing chunks of %s", len(missing), want.ref.sha256[:12])

    # commands -------------------------------------------------------------------------------
    def _on_command(self, cmd: Command, props: Any) -> None:
        log.info("command %s %s received", cmd.kind.value, cmd.item_id or cmd.id)
        ok, detail = True, ""
        if cmd.kind == CommandKind.play:
            if cmd.media is None:
                raise ContractError("play command without media")
            self._note_wanted(cmd.media)
            self.scheduler.submit(Job(cmd.item_id or cmd.id, cmd.media, time.time(),
                                      cmd.priority, "command", cmd.volume, cmd.repeat, False))
        elif cmd.kind == CommandKind.stop:
            ok = self.scheduler.stop_playback()
            detail = "stopped" if ok else "nothing was playing"
        elif cmd.kind == CommandKind.volume:
            if cmd.volume is None:
                raise ContractError("volume command without volume")
            self.store.set_setting("volume", str(cmd.volume))
        elif cmd.kind == CommandKind.test_tone:
            self._play_test_tone(cmd)
        elif cmd.kind == CommandKind.resync:
            self.resync()
        elif cmd.kind == CommandKind.reboot:
            ok, detail = False, "reboot is disabled on this node (run under systemd to allow)"
        self._reply(cmd, ok, detail, props)

    def _play_test_tone(self, cmd: Command) -> None:
        from edge.test_tone import test_tone_media

        ref, path = test_tone_media(self.config.storage_dir / "tone")
        self.cache.put_file(ref, path)
        self.scheduler.submit(Job(cmd.id, ref, time.time(), cmd.priority, "test tone",
                                  cmd.volume, 1, True))

    def resync(self) -> None:
        """Re-announce ourselves and fetch the retained plan and missing media again."""
        self.client.unsubscribe(self.topics.plan(self.node))
        self.client.subscribe(self.topics.plan(self.node), qos=1)
        with self._wants_lock:
            for want in self._wants.values():
                want.last_request = want.last_progress = 0.0

    def _reply(self, cmd: Command, ok: bool, detail: str, props: Any) -> None:
        reply = Reply(node=self.node, command_id=cmd.id, ok=ok, detail=detail)
        out = Properties(PacketTypes.PUBLISH)
        corr = getattr(props, "CorrelationData", None)
        if corr:
            out.CorrelationData = corr
        self.client.publish(self.topics.reply(self.node), reply.to_bytes(), 1, properties=out)

    # reports and outbox ---------------------------------------------------------------------
    def _report_playback(self, job: Job, event: PlaybackEvent, actual_at: float,
                         duration: float | None, detail: str) -> None:
        from datetime import UTC, datetime

        clock = self.clock_state()
        report = PlaybackReport(
            node=self.node, item_id=job.item_id, event=event,
            planned_at=datetime.fromtimestamp(job.start_at, UTC),
            actual_at=datetime.fromtimestamp(actual_at, UTC), duration_s=duration,
            detail=detail, clock_offset_ms=clock.offset_ms,
        )
        log.info("%s %s (late by %.3f s)", job.item_id, event.value, actual_at - job.start_at)
        self.send_reliably(report, self.topics.playback(self.node), report.id)

    def _send_alert(self, alert: Alert) -> None:
        self.send_reliably(alert, self.topics.alert(self.node), alert.id)

    def send_reliably(self, payload: Payload, topic: str, msg_id: str) -> None:
        """Outbox first, wire second: survives outages and restarts."""
        self.store.enqueue(msg_id, topic, payload.to_bytes())
        self._outbox_busy = True
        self.flush_outbox()

    def flush_outbox(self) -> None:
        if not self.connected.is_set():
            return
        with self._flush_lock:
            self._sweep_acknowledged()
            with self._inflight_lock:
                busy = {seq for _, seq in self._inflight.values()}
            pending = self.store.pending(limit=200)
            for msg in pending:
                if msg.seq in busy:
                    continue
                info = self.client.publish(msg.topic, msg.payload, qos=msg.qos)
                if info.rc == 0:
                    with self._inflight_lock:
                        self._inflight[info.mid] = (info, msg.seq)
            self._outbox_busy = bool(pending)

    def _sweep_acknowledged(self) -> None:
        """Acknowledge reports whose PUBACK came before flush_outbox recorded their mid
        (on_publish then found nothing to acknowledge)."""
        with self._inflight_lock:
            done = [mid for mid, (info, _) in self._inflight.items() if _published(info)]
            seqs = [self._inflight.pop(mid)[1] for mid in done]
        for seq in seqs:
            self.store.acknowledge(seq)

    # housekeeping ---------------------------------------------------------------------------
    def _housekeeping(self) -> None:
        next_telemetry = 0.0
        while not self._stop.wait(0.5):
            try:
                self._request_missing_media()
                if self._outbox_busy:
                    self.flush_outbox()
                if time.monotonic() >= next_telemetry and self.connected.is_set():
                    self.publish_telemetry()
                    next_telemetry = time.monotonic() + self.config.telemetry_interval_s
            except Exception:
                log.exception("housekeeping failed")

    def telemetry(self) -> Telemetry:
        plan = self.store.load_plan()
        playing = self.scheduler.now_playing()
        return Telemetry(
            node=self.node, uptime_s=round(time.monotonic() - self.started_at, 1),
            disk_free_mb=round(shutil.disk_usage(self.config.storage_dir).free / 2**20, 1),
            temperature_c=_cpu_temperature(), volume=self.volume(),
            now_playing=(playing.title or playing.item_id) if playing else None,
            plan_version=plan.version if plan else None, clock=self.clock_state(),
            cache_items=self.cache.count(), outbox_pending=self.store.pending_count(),
            cameras=self.cameras.stats() if self.cameras else [],
        )

    def publish_telemetry(self) -> None:
        self.client.publish(self.topics.telemetry(self.node), self.telemetry().to_bytes(), qos=0)


def _published(info: Any) -> bool:
    try:
        return bool(info.is_published())
    except (RuntimeError, ValueError):  # not sent (connection lost): it goes again
        return False


def _cpu_temperature() -> float | None:
    path = Path("/sys/class/thermal/thermal_zone0/temp")
    try:
        return round(int(path.read_text()) / 1000.0, 1)
    except (OSError, ValueError):
        return None
