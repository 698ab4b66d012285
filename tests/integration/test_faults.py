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

    def __init__(self, fleet: ProvisionedFleet) -> None:
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
        self.client.connect("127.0.0.1", fleet.broker_port)
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
