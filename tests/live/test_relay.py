"""Relays (tiếp sóng) from a real Icecast server fed by ffmpeg: a slot airs at its time
on a real node, a station that dies mid-slot is retried and logged, the slot ends on
time; and from a live HLS station (ffmpeg writing a sliding playlist, served over HTTP)
(issue 11)."""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from controller import relay
from devtools.icecast import running_icecast
from tests.conftest import make_user, wait_for
from tests.live.signals import heard_live, locate, speechlike, write_wav

pytestmark = pytest.mark.slow
SLOT_S = 35.0


def test_a_relay_slot_airs_on_time_survives_a_dying_station_and_ends_on_time(
        controller: Any, start_node: Any, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(relay, "RETRY_MAX_S", 4.0)  # the back-off, on this test's time scale
    node = start_node("node-1")
    station = write_wav(tmp_path / "station.wav", speechlike(7.0, seed=3))
    with running_icecast() as icecast:
        feeder = icecast.feed(station, "vov1.mp3")
        r = controller.post("/api/stream-sources", json={"name": "VOV1",
                                                         "url": icecast.url("vov1.mp3")})
        assert r.status_code == 201, r.text
        source_id = r.json()["id"]
        staff = make_user(controller, "bientap", "staff")
        assert controller.post("/api/stream-sources", json={"name": "x", "url": "file:///etc/x"},
                               ).json()["code"] == "relay_refused"
        assert controller.post("/api/stream-sources", headers=staff, json={
            "name": "x", "url": "http://example.org/x"}).status_code == 403
        start = datetime.now(UTC) + timedelta(seconds=4)
        r = controller.post("/api/relay-slots", json={
            "source_id": source_id, "targets": {"nodes": ["node-1"]}, "duration_s": SLOT_S,
            "timing": {"kind": "once", "start_at": start.isoformat()}, "title": "Thời sự"})
        assert r.status_code == 201 and r.json()["approved"], r.text
        slot = r.json()["id"]

        def log() -> list[dict]:
            return controller.get(f"/api/relay-slots/{slot}/log").json()

        wait_for(lambda: node.live.now_playing() is not None, 15, what="the slot on air")
        first = log()[0]
        assert abs(datetime.fromisoformat(first["started_at"]) - start) < timedelta(seconds=2)
        time.sleep(4)
        feeder.kill()  # the station dies mid-slot
        feeder.wait()
        wait_for(lambda: controller.get("/api/stream-sources").json()[0]["state"] == "failing",
                 15, what="the failure to show")
        controller.cookies.set("loaxa_session",
                               controller.headers["Authorization"].removeprefix("Bearer "))
        dashboard = controller.get("/dashboard").text
        controller.cookies.clear()
        assert "Đài tiếp sóng đang lỗi" in dashboard and "VOV1" in dashboard
        assert "Stream ends" not in dashboard and "127.0.0.1" not in dashboard
        wait_for(lambda: node.live.stats is None, 10, what="the node to go quiet")
        time.sleep(2)
        feeder = icecast.feed(station, "vov1.mp3")  # and comes back
        wait_for(lambda: node.live.now_playing() is not None, 20, what="the retried relay")
        wait_for(lambda: controller.get("/api/stream-sources").json()[0]["state"] == "ok", 10,
                 what="the station to be seen back")
        end = start + timedelta(seconds=SLOT_S)
        wait_for(lambda: datetime.now(UTC) > end and node.live.stats is None, SLOT_S + 10,
                 what="the slot to end on the node")
        assert datetime.now(UTC) - end < timedelta(seconds=5)
        feeder.kill()

    tries = log()
    aired = [t for t in tries if t["frames"] > 0]
    assert len(aired) >= 2, tries
    assert "source ended" in aired[0]["end_reason"]
    assert aired[-1]["end_reason"] == "the slot ended"
    assert all(t["ended_at"] for t in tries)
    assert sum(t["aired_s"] for t in aired) > SLOT_S / 2
    heard = heard_live(node.config.audio.file_dir, aired[0]["session_id"])
    again = heard_live(node.config.audio.file_dir, aired[-1]["session_id"])
    assert heard and again
    assert np.sqrt(np.mean(heard[0].samples ** 2)) > 0.01, "the station was not heard"
    outage = again[0].started_at - (heard[-1].started_at + len(heard[-1].samples) / 16000)
    assert outage > 1, "something played while the station was down"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        pass


@contextmanager
def hls_station(folder: Path, source: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """A live HLS station: ffmpeg writes ``source`` (looped, at its own pace) as AAC
    segments of 1 s into ``folder/vov1/`` with a sliding playlist of six (older
    segments deleted, as a live station does), served by a threaded HTTP server on a
    free port. Yields the playlist's URL once it lists two segments, and the writer."""
    out = folder / "vov1"
    out.mkdir(parents=True)
    writer = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
         "-i", str(source), "-c:a", "aac", "-b:a", "64k", "-f", "hls", "-hls_time", "1",
         "-hls_list_size", "6", "-hls_flags", "delete_segments", str(out / "live.m3u8")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, name="hls-server", daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/vov1/live.m3u8"
        wait_for(lambda: (out / "live.m3u8").exists()
                 and (out / "live.m3u8").read_text().count("#EXTINF") >= 2, 15,
                 what="the HLS playlist")
        with urllib.request.urlopen(url, timeout=5) as r:
            assert b"#EXTM3U" in r.read()
        yield url, writer
    finally:
        writer.kill()
        writer.wait()
        server.shutdown()
        server.server_close()


HLS_SLOT_S = 15.0


def test_a_relay_slot_from_an_hls_station_airs_at_its_time_and_ends_at_its_end(
        controller: Any, start_node: Any, tmp_path: Path) -> None:
    node = start_node("node-1")
    sound = speechlike(20.0, seed=4)
    station = write_wav(tmp_path / "station.wav", sound)
    with hls_station(tmp_path / "www", station) as (url, writer):
        r = controller.post("/api/stream-sources", json={"name": "VOV1 HLS", "url": url})
        assert r.status_code == 201, r.text
        start = datetime.now(UTC) + timedelta(seconds=4)
        r = controller.post("/api/relay-slots", json={
            "source_id": r.json()["id"], "targets": {"nodes": ["node-1"]},
            "duration_s": HLS_SLOT_S, "timing": {"kind": "once", "start_at": start.isoformat()},
            "title": "Thời sự"})
        assert r.status_code == 201 and r.json()["approved"], r.text
        slot = r.json()["id"]
        wait_for(lambda: node.live.now_playing() is not None, 20, what="the slot on air")
        end = start + timedelta(seconds=HLS_SLOT_S)
        wait_for(lambda: datetime.now(UTC) > end and node.live.stats is None, HLS_SLOT_S + 10,
                 what="the slot to end on the node")
        stopped = datetime.now(UTC)
        assert writer.poll() is None, "the station stopped before the slot ended"

    tries = controller.get(f"/api/relay-slots/{slot}/log").json()
    assert len(tries) == 1, tries  # one try, aired to the end: the station never failed
    [aired] = tries
    assert aired["end_reason"] == "the slot ended" and aired["frames"] > 0, aired
    opened = datetime.fromisoformat(aired["started_at"])
    closed = datetime.fromisoformat(aired["ended_at"])
    [heard] = heard_live(node.config.audio.file_dir, aired["session_id"])
    on_air = datetime.fromtimestamp(heard.started_at, UTC)
    heard_s = len(heard.samples) / heard.rate
    heard_end = on_air + timedelta(seconds=heard_s)
    loud = np.flatnonzero(envelope(heard.samples) > 1e-3)
    sound_end = on_air + timedelta(seconds=(loud[-1] + 1) * 160 / heard.rate)
    # where the station's sound is in what the node played (the source loops: tiled)
    reference = np.tile(sound, 2)
    middle = heard.samples[int(2 * heard.rate):int((heard_s - 1) * heard.rate)]
    lag, waveform = locate(middle, reference)
    _, shape = locate(envelope(middle), envelope(reference))
    print(f"\nHLS relay: session opened {(opened - start).total_seconds():+.2f} s from the "
          f"slot's start and closed {(closed - end).total_seconds():+.2f} s "
          f"from its end, first sound on the node {(on_air - start).total_seconds():+.2f} s, "
          f"{heard_s:.1f} s heard, its sound ending {(sound_end - end).total_seconds():+.2f} s "
          f"and its stream {(heard_end - end).total_seconds():+.2f} s from the slot's end, "
          f"the node quiet {(stopped - end).total_seconds():+.2f} s after it; "
          f"{len(middle) / heard.rate:.1f} s of it found at {lag / heard.rate:.2f} s of the "
          f"source: waveform correlation {waveform:.3f}, envelope {shape:.3f}")
    assert abs(opened - start) < timedelta(seconds=2)
    assert timedelta(0) <= on_air - start < timedelta(seconds=6), "aired late"
    # the session ends at the slot's end (the runner's tick is 1 s); every frame plays
    # latency_ms after its capture, so the last sound is heard that much later
    latency = timedelta(milliseconds=controller.runtime.settings.live_latency_ms)
    assert timedelta(0) <= closed - end < timedelta(seconds=1.5), "not closed at its end"
    assert sound_end - end < latency + timedelta(seconds=2), "the station aired on"
    assert heard_end - end < latency + timedelta(seconds=3), "the node's output stayed open"
    assert stopped - end < timedelta(seconds=5)
    assert heard_s > HLS_SLOT_S - 6
    assert np.sqrt(np.mean(middle ** 2)) > 0.01, "the station was not heard"
    assert shape > 0.9, f"what the node played is not the station ({shape:.2f})"
    assert waveform > 0.5, f"what the node played is not the station ({waveform:.2f})"


def envelope(samples: np.ndarray, window: int = 160) -> np.ndarray:
    usable = len(samples) // window * window
    return np.sqrt(np.mean(samples[:usable].reshape(-1, window) ** 2, axis=1))
