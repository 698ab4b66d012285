"""Live sessions end to end: the controller's feed (real ffmpeg, libopus), the real
broker and ACL, three real agents with file sinks (issue 11)."""

from __future__ import annotations

import itertools
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from controller.domain import Targets
from controller.live import chime_pcm
from controller.models import LiveBroadcast
from controller.services import audit
from mqtt_contract import LiveSource, PlaybackEvent, PlaybackReport, parse
from mqtt_contract import live_item_id as item_id_of
from tests.conftest import wait_for
from tests.live.signals import (
    RATE,
    heard_live,
    locate,
    longest_silence_s,
    speechlike,
    write_wav,
)

pytestmark = pytest.mark.slow
NODES = ("node-1", "node-2", "node-3")
LEAD_S = 3.0
"""Silence before the test signal in the source file: the chime plays meanwhile (what a
speaker says while the chime plays is not sent)."""


def drop_every(agent: Any, n: int) -> list[int]:
    """Lose every n-th live frame at this node before its player sees it (a lossy link)."""
    dropped: list[int] = []
    counter = itertools.count(1)
    for name in ("live", "zone_live"):
        inner = agent.dispatcher.handlers[name]

        def lossy(info: Any, data: bytes, props: Any, inner: Any = inner) -> None:
            if next(counter) % n == 0:
                dropped.append(1)
                return
            inner(info, data, props)

        agent.dispatcher.handlers[name] = lossy
    return dropped


def source_file(tmp_path: Path, seconds: float) -> tuple[Path, np.ndarray]:
    signal = speechlike(seconds)
    pad = np.zeros(int(LEAD_S * RATE), dtype=np.float32)
    return write_wav(tmp_path / "source.wav", np.concatenate([pad, signal, pad[:RATE]])), signal


def log_events(controller: Any, node: str, item: str) -> list[dict]:
    return controller.get("/api/log", params={"node": node, "item": item}).json()


def test_a_live_session_reaches_three_nodes_in_step_and_survives_lost_frames(
        controller: Any, start_node: Any, tmp_path: Path) -> None:
    agents = {n: start_node(n) for n in NODES}
    dropped = drop_every(agents["node-3"], 20)  # 5% of its frames never arrive
    path, signal = source_file(tmp_path, 8.0)
    runtime = controller.runtime
    opened = runtime.live.open(Targets.everyone(), "Họp khẩn", LiveSource.microphone,
                               "admin", str(path), realtime=True)
    session_id = opened.session.id
    item = item_id_of(session_id)
    assert opened.nodes == 3 and [t.spec.name for t in opened.topics] == ["live"]
    wait_for(lambda: all(any(e["event"] == "finished" for e in log_events(controller, n, item))
                         for n in NODES), 40, what="every node to finish the session")

    heard = {n: heard_live(a.config.audio.file_dir, session_id) for n, a in agents.items()}
    assert all(len(h) == 1 for h in heard.values()), heard
    starts = [h[0].started_at for h in heard.values()]
    assert max(starts) - min(starts) < 0.03, f"start skew {starts}"
    for node, (h,) in heard.items():
        lag, score = locate(signal, h.samples)
        assert score > 0.6, f"{node}: the source is not in what it played ({score:.2f})"
        voice = h.samples[lag:lag + len(signal)]
        assert longest_silence_s(voice, RATE) < 0.1, f"{node}: a gap in the voice"
        assert lag / RATE > 2.0, "the chime plays before the voice"
    assert dropped, "the lossy link dropped nothing"
    detail = next(e["detail"] for e in log_events(controller, "node-3", item)
                  if e["event"] == "finished")
    assert f"{len(dropped)} concealed" in detail, detail

    with runtime.db.session() as s:
        record = s.get(LiveBroadcast, session_id)
        assert record is not None and record.ended_at is not None
        assert record.started_by == "admin" and record.frames > 20
        actions = [e.action for e in audit.history(s, "live", session_id)]
    assert actions == ["live_start", "live_stop"], actions
    recorded_and_reported(controller, session_id, signal)


def recorded_and_reported(controller: Any, session_id: str, signal: np.ndarray) -> None:
    """The session's recording holds the source; the day's report counts it per node; the
    recording makes an announcement that can be scheduled again."""
    status = wait_for(lambda: (r := controller.get(f"/api/live/{session_id}").json())
                      ["recording"] and r, 20, what="the recording")
    assert status["playing"] == 0 and status["ended_nodes"] == 3 and status["nodes"] == 3
    media = controller.runtime.media.root / f"{status['recording']}.ogg"
    pcm = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(media), "-ac", "1", "-ar",
                          str(RATE), "-f", "s16le", "-"], capture_output=True, check=True).stdout
    recorded = np.frombuffer(pcm, "<i2").astype(np.float32) / 32767
    _, score = locate(signal, recorded)
    assert score > 0.6, f"the recording does not hold the source ({score:.2f})"
    chime = np.frombuffer(chime_pcm(RATE), "<i2").astype(np.float32) / 32767
    _, chimed = locate(chime[:RATE], recorded[:3 * RATE])
    assert chimed < 0.3, f"the recording starts with the chime ({chimed:.2f}): a " \
                         "rebroadcast adds its own, and would play two"
    day = datetime.now(UTC).astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
    report = controller.get("/api/reports/daily", params={"day": day}).json()
    row = next(r for r in report["per_item"] if r["item"] == item_id_of(session_id))
    assert row["name"] == "Phát trực tiếp: Họp khẩn" and row["plays"] == 3
    assert row["total_s"] > 3 * 8
    csv = controller.get("/api/reports/daily", params={"day": day, "format": "csv"}).text
    assert "Phát trực tiếp: Họp khẩn" in csv
    r = controller.post("/api/announcements", json={
        "title": "Phát lại buổi họp", "start_at": in_future(600), "nodes": ["node-1"],
        "items": [{"kind": "chime"}, {"kind": "recording", "upload": status["recording"]}]})
    assert r.status_code == 201, r.text
    assert r.json()["schedules"], "the recording could not be scheduled again"


def in_future(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def reports_in_outbox(agent: Any) -> list[PlaybackReport]:
    """The playback reports a node holds while its link is down."""
    return [parse(PlaybackReport, m.payload) for m in agent.store.pending(1000)
            if m.topic.endswith("/playback")]


def test_an_emergency_takes_the_output_from_a_live_session_which_then_resumes(
        controller: Any, start_node: Any, tmp_path: Path) -> None:
    node = start_node("node-1")
    path, _ = source_file(tmp_path, 25.0)
    runtime = controller.runtime
    opened = runtime.live.open(Targets.of(nodes=["node-1"]), "Trực tiếp", LiveSource.microphone,
                               "admin", str(path), realtime=True)
    item = item_id_of(opened.session.id)
    wait_for(lambda: any(e["event"] == "started" for e in log_events(controller, "node-1", item)),
             15, what="the live session to start on node-1")
    r = controller.post("/api/emergency", json={"text": "Khẩn cấp: lũ quét.",
                                                "targets": {"nodes": ["node-1"]}})
    assert r.status_code == 201, r.text
    emergency = r.json()["item_id"]
    wait_for(lambda: any(e["event"] == "finished"
                         for e in log_events(controller, "node-1", emergency)), 40,
             what="the emergency to play over the live session")
    played = next(e for e in log_events(controller, "node-1", emergency)
                  if e["event"] == "finished")
    began = datetime.fromisoformat(played["actual_at"]).timestamp()
    ended = began + played["duration_s"]
    wait_for(lambda: len(heard_live(node.config.audio.file_dir, opened.session.id)) == 2, 10,
             what="the live session to take the output back")
    runtime.live.close(opened.session.id, "admin")
    wait_for(lambda: any(e["event"] == "finished" for e in log_events(controller, "node-1", item)),
             15, what="the live session to end")
    before, after = heard_live(node.config.audio.file_dir, opened.session.id)
    assert before.started_at + len(before.samples) / before.rate <= began + 0.15, \
        "the live session went on under the emergency"
    assert after.started_at >= ended - 0.05, "the live session resumed over the emergency"
    assert after.started_at - ended < 2.5, "the live session did not resume"


def test_a_node_whose_link_drops_ends_the_session_and_plays_its_next_item_on_time(
        controller: Any, start_node: Any, tmp_path: Path) -> None:
    node = start_node("node-1")
    r = controller.post("/api/announcements", json={
        "text": "Thông báo ngắn.", "start_at": in_future(20), "nodes": ["node-1"],
        "priority": "priority"})
    assert r.status_code == 201, r.text
    scheduled = r.json()["deliveries"][0]["item_id"]
    wait_for(lambda: (plan := node.store.load_plan()) is not None
             and scheduled in {i.id for i in plan.items} and node.cache.count() > 0, 15,
             what="the scheduled item and its media on the node")
    path, _ = source_file(tmp_path, 40.0)
    opened = controller.runtime.live.open(Targets.of(nodes=["node-1"]), "", LiveSource.microphone,
                                          "admin", str(path), realtime=True)
    wait_for(lambda: node.live.now_playing() is not None, 15, what="the live session playing")
    node.loop.run_in_loop(node.transport.drop)  # the 4G link is gone
    dropped_at = time.monotonic()
    wait_for(lambda: node.live.stats is None, 10, what="the node to end the session itself")
    assert time.monotonic() - dropped_at < opened.session.silence_s + 1.5
    assert not node.amplifier.is_on, "the amplifier was left on"
    ended = next(r for r in reports_in_outbox(node) if r.item_id == item_id_of(opened.session.id)
                 and r.event != PlaybackEvent.started)
    assert ended.event == PlaybackEvent.stopped and "no frame for" in ended.detail
    started = wait_for(lambda: next((r for r in reports_in_outbox(node)
                                     if r.item_id == scheduled and r.event == "started"), None),
                       25, what="the scheduled item to start")
    late = (started.actual_at - started.planned_at).total_seconds()
    assert abs(late) < 0.2, f"the scheduled item started {late:.3f} s off its time"
