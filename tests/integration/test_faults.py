"""Faults, each a test (issue 13, item 6): a real broker with the project's files, real node
agents (in this process, or as a separate ``loaxa edge run`` process where it must die by
SIGKILL), the controller where it is the one publishing.

What must hold through each fault: nothing is lost, nothing is played twice or from a
partial file, and what a node reports is what happened.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import types
import wave
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import edge.scheduler as scheduler_module
import mqtt_contract as contract
from edge.media_cache import MediaCache
from firmware_config.provision import ProvisionedFleet
from firmware_config.schema import load_node_config
from mqtt_contract import Alert, MediaRef, MediaRequest, Plan, PlanItem, PlaybackReport, Priority
from tests.conftest import REPO, wait_for
from tests.edge.test_parts import tone
from tests.trust_helpers import COMMUNE, signed_plan, signer_for

pytestmark = pytest.mark.slow


# helpers -----------------------------------------------------------------------------------

class Watcher:
    """The controller's account on the broker (no controller runs): every node report."""

    def __init__(self, fleet: ProvisionedFleet, persistent: bool = False) -> None:
        """``persistent``: a session that outlives a broker restart (and its QoS 1 queue)."""
        self.client = fleet.mqtt_client(fleet.controller_user, fleet.controller_password,
                                        fleet.controller_client_id)
        self.reports: list[PlaybackReport] = []
        self.requests: list[MediaRequest] = []
        self.alerts: list[Alert] = []
        self.online: dict[str, bool] = {}
        ready = threading.Event()
        self.client.on_message = self._message
        self.client.on_subscribe = lambda *_: ready.set()
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(f, 1) for f, _ in contract.controller_subscriptions(fleet.share_group)])
        self.client.connect("127.0.0.1", fleet.broker_port,
                            properties=contract.connect_properties(persistent))
        self.client.loop_start()
        assert ready.wait(10), "the watcher did not subscribe"

    def _message(self, _c, _u, m) -> None:  # type: ignore[no-untyped-def]
        info = contract.parse_topic(m.topic)
        if info.spec is contract.PLAYBACK:
            self.reports.append(contract.parse(PlaybackReport, m.payload))
        elif info.spec is contract.MEDIA_REQUEST:
            self.requests.append(contract.parse(MediaRequest, m.payload))
        elif info.spec is contract.ALERT:
            self.alerts.append(contract.parse(Alert, m.payload))
        elif info.spec is contract.STATUS:
            self.online[info.node or ""] = contract.parse(contract.Status, m.payload).online

    def events(self, item: str) -> list[str]:
        return [r.event.value for r in self.reports if r.item_id == item]

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, 1, retain=retain).wait_for_publish(5)

    def send_plan(self, fleet: ProvisionedFleet, plan: Plan) -> None:
        self.publish(contract.PLAN.topic(COMMUNE, node=plan.node),
                     signed_plan(signer_for(fleet), plan).to_bytes(), retain=True)

    def send_chunks(self, ref: MediaRef, data: bytes, indexes: list[int],
                    node: str | None = None) -> None:
        """As the controller does: commune-wide, or to one node on its request."""
        for i in indexes:
            chunk = data[i * ref.chunk_size:(i + 1) * ref.chunk_size]
            topic = (contract.NODE_MEDIA.topic(COMMUNE, node=node, sha256=ref.sha256, index=i)
                     if node else contract.MEDIA.topic(COMMUNE, sha256=ref.sha256, index=i))
            self.publish(topic, chunk)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def watcher(broker: ProvisionedFleet) -> Iterator[Watcher]:
    w = Watcher(broker)
    yield w
    w.close()


def item(item_id: str, ref: MediaRef, in_s: float, **kw: object) -> PlanItem:
    return PlanItem(id=item_id, media=ref, priority=Priority.priority,
                    start_at=datetime.now(UTC) + timedelta(seconds=in_s), **kw)


def clip(folder: Path, name: str, seconds: float) -> tuple[MediaRef, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    ref, path = tone(folder / f"{name}.wav", seconds)
    return ref, path.read_bytes()


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


@dataclass
class NodeProcess:
    """``loaxa edge run`` in its own process, so that it can die by SIGKILL."""

    config: Path
    log: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "loaxa_cli", "edge", "run", "-c", str(self.config),
                 "--log-level", "info"], stdout=out, stderr=subprocess.STDOUT, env=env,
                cwd=REPO)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def node_process(broker: ProvisionedFleet, tmp_path: Path) -> Iterator[NodeProcess]:
    node = NodeProcess(broker.node_configs["node-1"], tmp_path / "node-1.log")
    yield node
    node.stop()


def node_dirs(fleet: ProvisionedFleet, node: str) -> tuple[Path, Path]:
    """(storage, sink) folders of a node, as its config resolves them."""
    cfg = load_node_config(fleet.node_configs[node])
    return cfg.storage_dir, cfg.audio.file_dir


def start_and_wait_online(node: NodeProcess, watcher: Watcher) -> None:
    watcher.online.pop("node-1", None)
    node.start()
    wait_for(lambda: watcher.online.get("node-1"), 20,
             what="the node process online (its retained status)")


# edge agent killed ---------------------------------------------------------------------------

def test_agent_killed_while_playing_reports_it_failed_after_restart_and_never_replays(
        broker, watcher, node_process, tmp_path) -> None:
    """Before: after the restart the item was marked failed on the node only; the
    controller had its "started" and waited for an end that never came."""
    start_and_wait_online(node_process, watcher)
    ref, data = clip(tmp_path / "media", "long", 8.0)
    watcher.send_plan(broker, Plan(node="node-1", version=1,
                                   items=[item("dai-1", ref, 4.0)]))
    watcher.send_chunks(ref, data, list(range(ref.chunks)))
    wait_for(lambda: "started" in watcher.events("dai-1"), 20, what="the item to start")
    time.sleep(1.5)  # playing; its state is in the node's store
    node_process.kill()
    start_and_wait_online(node_process, watcher)
    wait_for(lambda: "failed" in watcher.events("dai-1"), 15,
             what="the interrupted item reported failed after the restart")
    time.sleep(3.0)  # a replay would have started by now
    assert Counter(watcher.events("dai-1")) == {"started": 1, "failed": 1}
    failed = next(r for r in watcher.reports if r.event.value == "failed")
    assert failed.detail == scheduler_module.INTERRUPTED and failed.duration_s is None


def test_agent_killed_during_a_media_transfer_resumes_it_and_never_plays_a_partial_file(
        broker, watcher, node_process, tmp_path) -> None:
    start_and_wait_online(node_process, watcher)
    storage, sink = node_dirs(broker, "node-1")
    ref, data = clip(tmp_path / "media", "chunked", 2.5)
    ref = ref.model_copy(update={"chunk_size": contract.MIN_CHUNK_SIZE})
    assert ref.chunks >= 8
    watcher.send_plan(broker, Plan(node="node-1", version=1,
                                   items=[item("ban-tin", ref, 25.0)]))
    half = ref.chunks // 2
    watcher.send_chunks(ref, data, list(range(half)))
    partial = storage / "partial" / ref.sha256
    wait_for(lambda: partial.is_dir() and len(list(partial.iterdir())) == half, 10,
             what="the first half of the chunks on the node's disk")
    node_process.kill()
    cache = MediaCache(storage)
    assert not cache.has(ref.sha256) and not list(sink.glob("*.wav"))
    assert sorted(cache.received_chunks(ref.sha256)) == list(range(half))
    watcher.requests.clear()
    start_and_wait_online(node_process, watcher)
    request = wait_for(lambda: next((r for r in watcher.requests if r.sha256 == ref.sha256),
                                    None), 20, what="the restarted node to ask for the rest")
    assert request.chunks == list(range(half, ref.chunks))  # it resumes: only what it lacks
    watcher.send_chunks(ref, data, request.chunks, node="node-1")
    wait_for(lambda: "finished" in watcher.events("ban-tin"), 40, what="the item to play")
    (played,) = sink.glob("*.wav")
    assert wav_seconds(played) == pytest.approx(2.5, abs=0.05)
    assert Counter(watcher.events("ban-tin")) == {"started": 1, "finished": 1}


# the broker restarted during a plan push ---------------------------------------------------

def test_broker_killed_during_a_plan_push_loses_no_plan(controller, start_node,
                                                         broker_process) -> None:
    """SIGKILL right after the broker took the plans (it saves every second, so the
    retained plans may be gone): a node that was offline meanwhile still gets its plan,
    from the broker's file or from the controller republishing when it reconnects."""
    near = [start_node("node-1"), start_node("node-2")]
    start_node("node-3").stop()
    start_at = datetime.now(UTC) + timedelta(seconds=20)
    r = controller.post("/api/announcements", json={"text": "Thông báo cắt điện.",
                                                    "start_at": start_at.isoformat()})
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    wait_for(lambda: all(a.plans.current and a.plans.current.items for a in near), 15,
             what="the plans pushed to the nodes online")
    broker_process.kill()
    broker_process.start()
    late = start_node("node-3")
    wait_for(lambda: {d["node_id"] for d in controller.get(f"/api/announcements/{aid}")
                      .json()["deliveries"] if d["status"] == "finished"}
             == {"node-1", "node-2", "node-3"}, 60, what="all three nodes to play")
    for agent in [*near, late]:
        rows = controller.get("/api/log", params={"node": agent.node}).json()
        assert Counter(r["event"] for r in rows) == {"started": 1, "finished": 1}, rows


# the node's disk full ------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MB file system (tmpfs) for the node's storage: writes really fail ENOSPC."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def sized_clip(folder: Path, name: str, mib: float) -> tuple[MediaRef, bytes]:
    """A WAV of ``mib`` MiB at the rate the node decodes to (its decoded clip is as big)."""
    folder.mkdir(parents=True, exist_ok=True)
    ref, path = tone(folder / f"{name}.wav", mib * 1024 * 1024 / 48000, rate=24000)
    return ref, path.read_bytes()


def test_a_full_disk_evicts_the_least_recently_used_media_never_a_scheduled_one(
        small_disk, broker, watcher, start_node, tmp_path, caplog,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import edge.media_cache as cache_module

    monkeypatch.setattr(cache_module, "RESERVE_BYTES", 1024 * 1024)
    monkeypatch.setattr(scheduler_module, "LATE_GRACE_S", 3.0)
    cfg = load_node_config(broker.node_configs["node-1"])
    agent = start_node("node-1", storage_dir=small_disk,
                       audio=cfg.audio.model_copy(update={"realtime": False}))
    media = tmp_path / "media"
    old, _ = sized_clip(media, "old", 0.5)
    older, _ = sized_clip(media, "older", 0.55)  # (another size: another sha256)
    kept, _ = sized_clip(media, "kept", 1.0)
    for ref in (old, older, kept):  # written in this order ...
        agent.loop.run_in_loop(lambda r=ref: agent.cache.put_file(r, _src(media, r)))
        time.sleep(0.05)
    agent.loop.run_in_loop(lambda: agent.cache.touch(old.sha256))  # ... "old" used since
    tomorrow = item("ngay-mai", kept, 3600.0)
    fresh, fresh_data = sized_clip(media, "fresh", 0.6)
    watcher.send_plan(broker, Plan(node="node-1", version=1,
                                   items=[tomorrow, item("ngay-nay", fresh, 6.0)]))
    watcher.send_chunks(fresh, fresh_data, list(range(fresh.chunks)))
    wait_for(lambda: "finished" in watcher.events("ngay-nay"), 30,
             what="the new clip to play once room was made")
    cache = agent.cache
    assert not cache.has(older.sha256)  # the least recently used went
    assert cache.has(old.sha256) and cache.has(kept.sha256)
    assert "node storage nearly full" in caplog.text

    # now more than the disk can hold while the scheduled clip stays: a clear failure
    big, big_data = sized_clip(media, "big", 1.2)
    watcher.send_plan(broker, Plan(node="node-1", version=2,
                                   items=[tomorrow, item("qua-lon", big, 5.0)]))
    watcher.send_chunks(big, big_data, list(range(big.chunks)))
    wait_for(lambda: "failed" in watcher.events("qua-lon"), 40,
             what="the item whose media cannot fit reported failed")
    failed = next(r for r in watcher.reports if r.item_id == "qua-lon")
    assert failed.detail == scheduler_module.STORAGE_FULL
    assert cache.has(kept.sha256)  # still scheduled: never evicted
    assert not cache.has(old.sha256) and not cache.has(fresh.sha256)  # not named any more
    assert "node storage full: no room for media" in caplog.text
    wait_for(lambda: agent.store.pending_count() == 0, 10,
             what="every report stored and sent (the disk kept room for them)")


def _src(folder: Path, ref: MediaRef) -> Path:
    return next(p for p in folder.glob("*.wav")
                if hashlib.sha256(p.read_bytes()).hexdigest() == ref.sha256)


# the node's clock stepped --------------------------------------------------------------------

class SteppedClock:
    """The node scheduler's wall clock, stepped as NTP or an operator steps a real one;
    the monotonic clock runs on untouched (what a real step does)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def set_to(self, epoch: float) -> None:
        self.offset = epoch - time.time()


@pytest.fixture
def stepped_clock(monkeypatch: pytest.MonkeyPatch) -> SteppedClock:
    clock = SteppedClock()
    monkeypatch.setattr(scheduler_module, "time",
                        types.SimpleNamespace(time=clock.time, monotonic=time.monotonic))
    return clock


def started_late_by(watcher: Watcher, item_id: str) -> float:
    report = next(r for r in watcher.reports if r.item_id == item_id
                  and r.event.value == "started")
    return (report.actual_at - report.planned_at).total_seconds()


def test_a_clock_stepped_back_neither_fires_early_nor_replays(
        broker, watcher, start_node, stepped_clock, tmp_path) -> None:
    agent = start_node("node-1")
    ref, path = tone(tmp_path / "beep.wav", 0.5)
    agent.loop.run_in_loop(lambda: agent.cache.put_file(ref, path))
    first, second = item("mot", ref, 3.0), item("hai", ref, 10.0)
    watcher.send_plan(broker, Plan(node="node-1", version=1, items=[first, second]))
    wait_for(lambda: "finished" in watcher.events("mot"), 15, what="the first item")
    time.sleep(max(0.0, second.start_at.timestamp() - time.time() - 1.0))  # "hai" armed
    stepped_clock.offset = -3600.0  # the clock goes back an hour
    time.sleep(max(0.0, second.start_at.timestamp() - time.time() + 3.0))
    assert watcher.events("hai") == []  # its timer did not fire an hour early
    assert Counter(watcher.events("mot")) == {"started": 1, "finished": 1}  # no replay
    stepped_clock.set_to(second.start_at.timestamp() - 3.0)  # and forward again
    wait_for(lambda: "finished" in watcher.events("hai"), 15, what="the second item")
    assert abs(started_late_by(watcher, "hai")) < 0.5  # on time by the node's clock
    assert Counter(watcher.events("mot")) == {"started": 1, "finished": 1}


def test_a_clock_stepped_forward_skips_what_it_jumped_over_and_keeps_time(
        broker, watcher, start_node, stepped_clock, tmp_path) -> None:
    agent = start_node("node-1")
    ref, path = tone(tmp_path / "beep.wav", 0.5)
    agent.loop.run_in_loop(lambda: agent.cache.put_file(ref, path))
    soon, later, after = (item("sap-toi", ref, 4.0), item("giua-gio", ref, 1800.0),
                          item("sau-gio", ref, 3612.0))
    watcher.send_plan(broker, Plan(node="node-1", version=1, items=[soon, later, after]))
    wait_for(lambda: agent.plans.version == 1, 10, what="the plan applied")
    time.sleep(max(0.0, soon.start_at.timestamp() - time.time() - 1.0))  # "sap-toi" armed
    stepped_clock.offset = 3600.0
    wait_for(lambda: "finished" in watcher.events("sau-gio"), 30,
             what="the item after the jump, on time")
    assert watcher.events("sap-toi") == ["skipped"]  # not played an hour late
    assert watcher.events("giua-gio") == ["skipped"]
    assert abs(started_late_by(watcher, "sau-gio")) < 0.5


# a node offline for an hour ------------------------------------------------------------------

def test_a_node_offline_for_an_hour_delivers_every_report_and_alert_once(
        broker, broker_process, start_node, stepped_clock, tmp_path) -> None:
    """The node's hour passes on its stepped clock (no real hour): six items play with the
    broker down, three camera alerts are raised; all of it arrives once when it is back."""
    watcher = Watcher(broker, persistent=True)
    hour_ago = time.time() - 3600.0
    stepped_clock.set_to(hour_ago)
    agent = start_node("node-1")
    ref, path = tone(tmp_path / "beep.wav", 0.3)
    agent.loop.run_in_loop(lambda: agent.cache.put_file(ref, path))
    items = [PlanItem(id=f"gio-{k}", media=ref, priority=Priority.priority,
                      start_at=datetime.fromtimestamp(hour_ago + 30 + 600 * k, UTC))
             for k in range(6)]
    watcher.send_plan(broker, Plan(node="node-1", version=1, items=items))
    wait_for(lambda: agent.plans.version == 1, 10, what="the plan applied")
    broker_process.stop()
    wait_for(lambda: not agent.transport.connected, 10, what="the node offline")
    alerts = []
    for k, planned in enumerate(items):
        stepped_clock.set_to(planned.start_at.timestamp() - 2.5)
        wait_for(lambda p=planned: agent.scheduler.item_state(p.id) == "finished", 15,
                 what=f"item {planned.id} played offline")
        if k % 2 == 0:
            alert = Alert(id=f"canh-bao-{k}", node="node-1", camera="cong", kind="fire",
                          at=datetime.fromtimestamp(stepped_clock.time(), UTC),
                          confidence=0.9)
            agent.loop.call_soon_threadsafe(agent.send_alert, alert)
            alerts.append(alert.id)
    stepped_clock.offset = 0.0  # an hour later
    assert agent.outbox.pending_count() == 2 * len(items) + len(alerts)
    broker_process.start()
    wait_for(lambda: agent.outbox.pending_count() == 0, 90, what="the outbox to drain")
    wait_for(lambda: len(watcher.reports) >= 2 * len(items) and len(watcher.alerts)
             >= len(alerts), 20, what="every report and alert at the controller's side")
    time.sleep(1.0)
    assert Counter((r.item_id, r.event.value) for r in watcher.reports) == {
        (p.id, e): 1 for p in items for e in ("started", "finished")}
    assert sorted(a.id for a in watcher.alerts) == sorted(alerts)
    assert len({r.id for r in watcher.reports}) == len(watcher.reports)
    for planned in items:
        assert abs(started_late_by(watcher, planned.id)) < 0.5
    watcher.close()
