"""Foundation end to end: controller → real Mosquitto → three real agents → WAV sinks."""

from __future__ import annotations

import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import wait_for

pytestmark = pytest.mark.slow
TEXT = "UBND xã thông báo: ngày 5/3 tiêm chủng cho trẻ em dưới 5 tuổi tại trạm y tế, lúc 7h30."


def sink_wavs(agent) -> list[Path]:  # type: ignore[no-untyped-def]
    return sorted(agent.config.audio.file_dir.glob("*.wav"))


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def announcement(client, aid: int) -> dict:  # type: ignore[no-untyped-def]
    r = client.get(f"/api/announcements/{aid}")
    assert r.status_code == 200, r.text
    return r.json()


def all_finished(client, aid: int, count: int):  # type: ignore[no-untyped-def]
    a = announcement(client, aid)
    done = [d for d in a["deliveries"] if d["status"] == "finished"]
    return a if len(done) == count else None


def test_announcement_reaches_three_nodes_and_api_shows_playback(controller, start_node):
    agents = [start_node(n) for n in ("node-1", "node-2", "node-3")]
    wait_for(lambda: sum(n["online"] for n in controller.get("/api/nodes").json()) == 3, 10,
             what="three nodes online in the API")

    r = controller.post("/api/announcements", json={"title": "Tiêm chủng", "text": TEXT,
                                                    "play_now": True})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["engine_used"] in ("espeak-ng", "gtts")
    if created["engine_used"] == "espeak-ng":  # offline here: the fallback is recorded
        assert created["fallback_reason"]
    assert {d["node_id"] for d in created["deliveries"]} == {"node-1", "node-2", "node-3"}

    final = wait_for(lambda: all_finished(controller, created["id"], 3), 60,
                     what="playback finished on all three nodes")
    expected = final["duration_s"]
    starts = []
    for agent, delivery in zip(agents, sorted(final["deliveries"], key=lambda d: d["node_id"]),
                               strict=True):
        wavs = sink_wavs(agent)
        assert len(wavs) == 1, wavs
        assert wav_seconds(wavs[0]) == pytest.approx(expected, abs=0.15)
        assert delivery["actual_start"] is not None
        assert abs(delivery["start_offset_ms"]) < 1000
        starts.append(datetime.fromisoformat(delivery["actual_start"]))
    assert max(starts) - min(starts) < timedelta(milliseconds=300)  # one instant, no echo
    nodes = {n["node_id"]: n for n in controller.get("/api/nodes").json()}
    assert all(n["telemetry"] and n["telemetry"]["plan_version"] for n in nodes.values())


def test_offline_node_plays_after_reconnecting_before_start(controller, start_node):
    start_node("node-1")
    late = start_node("node-3")
    late.stop(graceful=False)  # the link drops: the broker's will marks it offline
    wait_for(lambda: not {n["node_id"]: n for n in controller.get("/api/nodes").json()}
             ["node-3"]["online"], 15, what="node-3 shown offline")

    start_at = datetime.now(UTC) + timedelta(seconds=12)
    r = controller.post("/api/announcements", json={"text": "Thông báo lịch họp thôn.",
                                                    "start_at": start_at.isoformat()})
    assert r.status_code == 201, r.text
    aid = r.json()["id"]

    back = start_node("node-3")  # same account, same store: the session and plan resume
    wait_for(lambda: all_finished(controller, aid, 2), 40, what="both nodes played")
    assert len(sink_wavs(back)) == 1
    delivery = next(d for d in announcement(controller, aid)["deliveries"]
                    if d["node_id"] == "node-3")
    assert abs(delivery["start_offset_ms"]) < 1000


def test_node_that_never_saw_the_broadcast_fetches_media_on_request(controller, start_node):
    """A node that joins after the media went out asks for the chunks it lacks."""
    start_at = datetime.now(UTC) + timedelta(seconds=12)
    r = controller.post("/api/announcements", json={"text": "Thông báo mất điện.",
                                                    "start_at": start_at.isoformat()})
    aid = r.json()["id"]
    newcomer = start_node("node-2")
    wait_for(lambda: any(d["node_id"] == "node-2" and d["status"] == "finished"
                         for d in announcement(controller, aid)["deliveries"]), 40,
             what="node-2 played after fetching the media")
    assert len(sink_wavs(newcomer)) == 1


def test_past_start_time_and_unknown_node_are_refused(controller):
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    r = controller.post("/api/announcements", json={"text": "x", "start_at": past})
    assert r.status_code == 422 and "past" in r.json()["detail"]["reason"], r.text
    assert r.json()["message"].startswith("Thời điểm phát đã qua")
    r = controller.post("/api/announcements", json={"text": "x", "nodes": ["nope"],
                                                    "play_now": True})
    assert r.status_code == 422 and "nope" in r.json()["detail"]["reason"], r.text
    r = controller.post("/api/announcements", json={"text": ""})
    assert r.status_code == 422 and "text" in r.json()["detail"]
    assert controller.get("/api/announcements/999").status_code == 404


def test_zone_media_reaches_only_that_zone(controller, start_node):
    """Audio for one village goes out on its zone topic: other villages' 3G links are spared."""
    inside, outside = start_node("node-1"), start_node("node-3")
    r = controller.post("/api/announcements", json={"text": "Thông báo riêng thôn 1.",
                                                    "zones": ["thon-1"], "play_now": True})
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    wait_for(lambda: all_finished(controller, aid, 1), 40, what="node-1 to play")
    assert {d["node_id"] for d in announcement(controller, aid)["deliveries"]} == {
        "node-1", "node-2"}  # thon-1's two points; node-3 is in thon-2
    assert inside.cache.count() == 1
    assert outside.cache.count() == 0 and not any(outside.cache.partial_dir.iterdir())
