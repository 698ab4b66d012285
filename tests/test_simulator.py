"""The multi-process simulator: splitting, the shared-decode sink, a real swarm online."""

from __future__ import annotations

import json
import threading
import time
import wave
from pathlib import Path
from typing import Any

from devtools.simulator import (
    AGENTS_PER_PROCESS,
    SharedDecodes,
    SharedDecodeSink,
    default_processes,
    find_node_configs,
    run_swarm,
    split,
)
from firmware_config.provision import ProvisionedFleet
from mqtt_contract import connect_properties
from tests.conftest import wait_for


def test_split_deals_every_config_once_and_evenly() -> None:
    items = [Path(f"n{i}") for i in range(10)]
    parts = split(items, 3)
    assert sorted(p for part in parts for p in part) == sorted(items)
    assert [len(p) for p in parts] == [4, 3, 3]
    assert split(items[:2], 5) == [[items[0]], [items[1]]]  # never an empty worker


def test_default_processes_one_loop_per_core_at_most() -> None:
    import os

    assert default_processes(3) == 1
    assert default_processes(AGENTS_PER_PROCESS) == 1
    assert default_processes(1000) == min(os.cpu_count() or 1, 2)
    assert default_processes(100_000) == (os.cpu_count() or 1)


def _tone(path: Path, seconds: float = 0.5, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x10" * int(seconds * rate))
    return path


def test_shared_decode_sink_decodes_once_and_never_cuts_a_shared_file(tmp_path: Path) -> None:
    media = _tone(tmp_path / "clip.wav")
    decodes = SharedDecodes(tmp_path / "decoded")
    a = SharedDecodeSink(tmp_path / "a", decodes, realtime=True)
    b = SharedDecodeSink(tmp_path / "b", decodes, realtime=True)
    clip_a = a.prepare(media, 80, tmp_path / "wa")
    clip_b = b.prepare(media, 80, tmp_path / "wb")
    assert clip_a.wav == clip_b.wav and len(list(decodes.directory.iterdir())) == 1
    full = clip_a.wav.stat().st_size

    playing = a.start(clip_a, "item-1")
    assert playing.stop() < 0.1  # preempted at once: a's copy is cut, the shared one not
    finished = b.start(clip_b, "item-1")
    (out_a,), (out_b,) = (tmp_path / "a").iterdir(), (tmp_path / "b").iterdir()
    assert not finished.done() and finished.remaining() > 0.3
    assert clip_a.wav.stat().st_size == full
    assert out_b.stat().st_size == full
    assert out_a.stat().st_size < full


def test_swarm_over_two_processes_brings_every_node_online(broker: ProvisionedFleet) -> None:
    configs = find_node_configs(broker.root)
    assert len(configs) >= 2
    online: set[str] = set()
    user, client_id, password = broker.controller_account(2)
    watcher = broker.mqtt_client(user, password, client_id)

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        if json.loads(msg.payload).get("online"):
            online.add(msg.topic.split("/")[4])

    watcher.on_connect = lambda c, *_: c.subscribe("loaxa/v1/+/node/+/status", 1)
    watcher.on_message = on_message
    watcher.connect("127.0.0.1", broker.broker_port, clean_start=True,
                    properties=connect_properties(persistent=False))
    watcher.loop_start()
    stop = threading.Event()
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(run_swarm(configs, 2, stop, "warning")))
    runner.start()
    try:
        wait_for(lambda: len(online) == len(configs), 60, what="every simulated node online")
    finally:
        stop.set()
        runner.join(timeout=60)
        watcher.loop_stop()
    assert result == [0], "a worker process failed"
    assert not runner.is_alive()
    time.sleep(0.1)


def test_an_emergency_sent_as_command_and_plan_item_plays_once(tmp_path: Path) -> None:
    """Found by benchmarks/fanout.py: the command's queued job stayed behind when the plan
    item with the same id started first, and played the clip a second time after it."""
    from datetime import UTC, datetime

    from edge.amplifier import Amplifier
    from edge.loop import Reactor
    from edge.media_cache import MediaCache, sha256_file
    from edge.scheduler import Job, LocalScheduler
    from edge.store import NodeStore
    from mqtt_contract import DEFAULT_QUIET_HOURS, MediaRef, Plan, PlanItem, Priority

    media = _tone(tmp_path / "clip.wav", seconds=0.3)
    ref = MediaRef(sha256=sha256_file(media), size=media.stat().st_size, codec="wav",
                   duration_s=0.3)
    store, cache = NodeStore(tmp_path / "node.sqlite3"), MediaCache(tmp_path / "node")
    cache.put_file(ref, media)
    reports: list[tuple[str, str]] = []
    sink = SharedDecodeSink(tmp_path / "sink", SharedDecodes(tmp_path / "decoded"))
    loop = Reactor("test")
    scheduler = LocalScheduler(
        loop, store, cache, sink, Amplifier(None, 0.0),
        lambda job, event, *_: reports.append((job.item_id, event.value)), lambda ref: None,
        lambda: 80, DEFAULT_QUIET_HOURS, "Asia/Ho_Chi_Minh", 2.0, tmp_path / "prepared")
    now = time.time()
    loop.start()

    def feed() -> None:
        scheduler.submit(Job("s1-1", ref, now, Priority.emergency, "command"))
        scheduler.set_plan(Plan(node="n1", version=1, items=[PlanItem(
            id="s1-1", media=ref, start_at=datetime.fromtimestamp(now - 0.5, UTC),
            priority=Priority.emergency, ignore_quiet_hours=True)]))
        scheduler.start()

    loop.run_in_loop(feed)
    try:
        wait_for(lambda: ("s1-1", "finished") in reports, 10, what="the emergency to finish")
        time.sleep(1.0)  # time enough for a second play, if one were coming
    finally:
        loop.run_in_loop(scheduler.close)
        loop.stop()
        store.close()
    assert [r for r in reports if r[1] == "started"] == [("s1-1", "started")]
    assert len(list((tmp_path / "sink").iterdir())) == 1
