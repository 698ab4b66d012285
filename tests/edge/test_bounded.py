"""A node that cannot be wedged, and sizes that are bounded (issue 10, item 8).

Part-level: the scheduler, the media fetcher and cache, and the contract's models, each
with the input an attacker (or a lost link) gave them. The wire tests are in
tests/integration/test_media_amplification.py and tests/fuzz/.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

import edge.scheduler as scheduler_module
from edge.loop import Reactor
from edge.media import MediaFetcher
from edge.media_cache import MediaCache
from edge.scheduler import Job
from mqtt_contract import (
    MAX_MEDIA_CHUNKS,
    Command,
    ContractError,
    MediaRef,
    MediaRequest,
    Plan,
    PlanItem,
    PlaybackEvent,
    Priority,
    parse,
)
from tests.conftest import wait_for
from tests.edge.test_parts import make_scheduler, tone


@pytest.fixture
def loop():  # type: ignore[no-untyped-def]
    reactor = Reactor("test-bounded")
    reactor.start()
    yield reactor
    reactor.stop()


def absent_ref(seed: str) -> MediaRef:
    return MediaRef(sha256=hashlib.sha256(seed.encode()).hexdigest(), size=50_000,
                    duration_s=3)


# --------------------------------------------------------------------------- the scheduler
def test_an_emergency_without_media_fails_after_its_grace_and_blocks_nothing(
        tmp_path: Path, loop: Reactor, monkeypatch: pytest.MonkeyPatch) -> None:
    """The emergency's media never comes. Before: it stayed queued, was picked on every
    look, and the plan item after it was skipped "busy or down" while nothing played."""
    monkeypatch.setattr(scheduler_module, "LATE_GRACE_S", 1.5)
    reports: list[tuple[str, PlaybackEvent]] = []
    scheduler = make_scheduler(tmp_path, loop, reports)
    ref, path = tone(tmp_path / "tone.wav", 0.3)
    scheduler.cache.put_file(ref, path)
    plan = Plan(node="n1", version=1, items=[PlanItem(
        id="s1-1", media=ref, start_at=datetime.fromtimestamp(time.time() + 0.5, UTC),
        priority=Priority.ordinary, ignore_quiet_hours=True)])
    loop.run_in_loop(lambda: (scheduler.set_plan(plan), scheduler.start(), scheduler.submit(
        Job("e1", absent_ref("never"), time.time(), Priority.emergency, "emergency"))))
    wait_for(lambda: ("s1-1", PlaybackEvent.finished) in reports, 10,
             what="the plan item to play while the emergency waits for its media")
    assert ("s1-1", PlaybackEvent.skipped) not in reports
    wait_for(lambda: ("e1", PlaybackEvent.failed) in reports, 10,
             what="the emergency to be given up")
    assert scheduler.item_state("e1") == "failed"
    assert reports.count(("e1", PlaybackEvent.failed)) == 1
    loop.run_in_loop(scheduler.close)
    scheduler.store.close()


def test_an_emergency_whose_media_comes_in_its_grace_still_plays(
        tmp_path: Path, loop: Reactor) -> None:
    reports: list[tuple[str, PlaybackEvent]] = []
    scheduler = make_scheduler(tmp_path, loop, reports)
    ref, path = tone(tmp_path / "tone.wav", 0.2)
    loop.run_in_loop(lambda: (scheduler.start(), scheduler.submit(
        Job("e1", ref, time.time(), Priority.emergency, "emergency"))))
    time.sleep(0.5)
    loop.run_in_loop(lambda: (scheduler.cache.put_file(ref, path), scheduler.wake()))
    wait_for(lambda: ("e1", PlaybackEvent.finished) in reports, 10, what="the emergency")
    loop.run_in_loop(scheduler.close)
    scheduler.store.close()


def test_a_plan_item_without_media_holds_back_no_lower_item(
        tmp_path: Path, loop: Reactor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler_module, "LATE_GRACE_S", 1.0)
    reports: list[tuple[str, PlaybackEvent]] = []
    scheduler = make_scheduler(tmp_path, loop, reports)
    ref, path = tone(tmp_path / "tone.wav", 0.2)
    scheduler.cache.put_file(ref, path)
    start = datetime.fromtimestamp(time.time() + 0.3, UTC)
    plan = Plan(node="n1", version=1, items=[
        PlanItem(id="high", media=absent_ref("x"), start_at=start, priority=Priority.priority),
        PlanItem(id="low", media=ref, start_at=start, priority=Priority.ordinary,
                 ignore_quiet_hours=True)])
    loop.run_in_loop(lambda: (scheduler.set_plan(plan), scheduler.start()))
    wait_for(lambda: ("low", PlaybackEvent.finished) in reports, 10, what="the lower item")
    wait_for(lambda: ("high", PlaybackEvent.failed) in reports, 10, what="the missing one")
    loop.run_in_loop(scheduler.close)
    scheduler.store.close()


# --------------------------------------------------------------------------- partial/
def chunks_of(data: bytes, size: int = 32 * 1024) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def make_fetcher(tmp_path: Path, loop: Reactor, sent: list) -> MediaFetcher:
    return MediaFetcher(loop, MediaCache(tmp_path / "cache"), "xa-demo", "n1", 0.3,
                        sent.append, lambda ref: None)


def partial_on_disk(tmp_path: Path) -> int:
    return sum(p.stat().st_size for p in (tmp_path / "cache" / "partial").rglob("*")
               if p.is_file())


def test_chunks_of_media_nobody_named_do_not_stay(tmp_path: Path, loop: Reactor,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks for other nodes' announcements (fanned out commune-wide) used to pile up in
    partial/ for ever. Now they are held a short while (a broadcast may overtake the
    command naming it), then removed."""
    import edge.media as media_module

    monkeypatch.setattr(media_module, "UNNAMED_TTL_S", 0.3, raising=False)
    fetcher = make_fetcher(tmp_path, loop, [])
    other = b"\x01" * 100_000
    sha = hashlib.sha256(other).hexdigest()
    loop.run_in_loop(lambda: [fetcher.chunk(sha, i, c) for i, c in enumerate(chunks_of(other))])
    wait_for(lambda: partial_on_disk(tmp_path) == 0, 5, what="the unnamed chunks to go")
    assert not (tmp_path / "cache" / "partial" / sha).exists()


def test_chunks_that_arrive_just_before_the_plan_are_kept_for_a_while(
        tmp_path: Path, loop: Reactor) -> None:
    """The broadcast may overtake the plan that names it: a few recent unnamed clips are
    held (bounded), and kept once a plan names them."""
    fetcher = make_fetcher(tmp_path, loop, [])
    data = bytes(range(256)) * 300
    ref = MediaRef(sha256=hashlib.sha256(data).hexdigest(), size=len(data), codec="mp3",
                   duration_s=5)
    parts = chunks_of(data)
    loop.run_in_loop(lambda: fetcher.chunk(ref.sha256, 0, parts[0]))
    loop.run_in_loop(lambda: (fetcher.want(ref), fetcher.chunk(ref.sha256, 1, parts[1]),
                              fetcher.chunk(ref.sha256, 2, parts[2])))
    assert fetcher.cache.has(ref.sha256)


def test_partial_media_no_longer_named_is_removed(tmp_path: Path, loop: Reactor,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import edge.media as media_module

    monkeypatch.setattr(media_module, "COMMAND_HOLD_S", 0.0, raising=False)
    sent: list = []
    fetcher = make_fetcher(tmp_path, loop, sent)
    data = b"\x02" * 100_000
    ref = MediaRef(sha256=hashlib.sha256(data).hexdigest(), size=len(data), duration_s=5)
    loop.run_in_loop(lambda: (fetcher.want(ref), fetcher.chunk(ref.sha256, 0, data[:32768])))
    assert partial_on_disk(tmp_path) == 32768
    loop.run_in_loop(lambda: fetcher.keep_only(set()))  # the plan dropped it
    assert partial_on_disk(tmp_path) == 0 and ref.sha256 not in fetcher.wants
    assert not (tmp_path / "cache" / "partial" / ref.sha256).exists()


def test_a_full_partial_store_never_starves_wanted_media(
        tmp_path: Path, loop: Reactor, monkeypatch: pytest.MonkeyPatch) -> None:
    """At the cap every chunk used to be dropped, resends included."""
    import edge.media_cache as cache_module

    monkeypatch.setattr(cache_module, "MAX_PARTIAL_BYTES", 200_000)
    fetcher = make_fetcher(tmp_path, loop, [])
    junk = [b"%d" % i * 40_000 for i in range(8)]  # ~ 8 unnamed clips of 40-80 KB
    for blob in junk:
        sha = hashlib.sha256(blob).hexdigest()
        loop.run_in_loop(lambda s=sha, b=blob: [fetcher.chunk(s, i, c)
                                                for i, c in enumerate(chunks_of(b))])
    assert partial_on_disk(tmp_path) <= 200_000
    data = bytes(range(251)) * 1000  # 251 KB: more than the cap on its own
    ref = MediaRef(sha256=hashlib.sha256(data).hexdigest(), size=len(data), duration_s=5)
    loop.run_in_loop(lambda: (fetcher.want(ref), [fetcher.chunk(ref.sha256, i, c)
                                                  for i, c in enumerate(chunks_of(data))]))
    assert fetcher.cache.has(ref.sha256)


# --------------------------------------------------------------------------- bounded sizes
def command_json(**media: object) -> bytes:
    ref = {"sha256": "ab" * 32, "size": 20_000_000, "duration_s": 5, **media}
    return json.dumps({"v": 1, "kind": "play", "media": ref}).encode()


@pytest.mark.parametrize("media", [
    {"chunk_size": 1},  # 20 million chunks
    {"chunk_size": 0},
    {"chunk_size": 64 * 1024 * 1024},
    {"size": 10**12},  # a terabyte
    {"codec": "../../../../etc/passwd"},
    {"codec": "mp3/../x"},
    {"duration_s": 1e12},
])
def test_commands_with_unbounded_media_are_refused_as_malformed(media: dict) -> None:
    with pytest.raises(ContractError):
        parse(Command, command_json(**media))


def test_a_plan_with_a_path_codec_is_refused_before_anything_is_saved() -> None:
    plan = {"v": 1, "node": "n1", "version": 1, "items": [{
        "id": "a", "start_at": "2030-01-01T00:00:00Z",
        "media": {"sha256": "ab" * 32, "size": 10, "duration_s": 1, "codec": "../" * 20}}]}
    with pytest.raises(ContractError):
        parse(Plan, json.dumps(plan))


def test_media_requests_are_deduplicated_and_capped() -> None:
    req = parse(MediaRequest, json.dumps({"v": 1, "node": "n1", "sha256": "ab" * 32,
                                          "chunks": [0] * 10_000 + [3, 3, 1]}))
    assert req.chunks == [0, 1, 3]
    with pytest.raises(ContractError):  # 30,000 entries (60 KB): more than any media has
        parse(MediaRequest, json.dumps({"v": 1, "node": "n1", "sha256": "ab" * 32,
                                        "chunks": [0] * 30_000}))
    with pytest.raises(ContractError):
        parse(MediaRequest, json.dumps({"v": 1, "node": "n1", "sha256": "ab" * 32,
                                        "chunks": [MAX_MEDIA_CHUNKS]}))
    with pytest.raises(ContractError):
        parse(MediaRequest, json.dumps({"v": 1, "node": "n1", "sha256": "ab" * 32,
                                        "chunks": [-1]}))


def test_the_cache_never_joins_a_codec_it_does_not_know(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path)
    ref = MediaRef.model_construct(sha256="ab" * 32, size=10, codec="../../x", duration_s=1,
                                   chunk_size=32 * 1024)
    with pytest.raises(ValueError):
        cache.put_file(ref, tmp_path / "nothing")
    assert list(tmp_path.rglob("x*")) == []


def test_an_oversized_unnamed_chunk_evicts_nothing(tmp_path: Path, loop: Reactor) -> None:
    fetcher = make_fetcher(tmp_path, loop, [])
    held = b"\x03" * 32768
    sha = hashlib.sha256(held).hexdigest()
    loop.run_in_loop(lambda: fetcher.chunk(sha, 0, held))
    loop.run_in_loop(lambda: fetcher.chunk("ab" * 32, 0, b"\x00" * (2 * 1024 * 1024)))
    assert partial_on_disk(tmp_path) == 32768
