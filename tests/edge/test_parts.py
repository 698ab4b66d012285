"""The node's parts on their own: each takes messages and time, and produces effects and
outgoing messages. No broker here; the end-to-end tests prove the wire behaviour."""

from __future__ import annotations

import hashlib
import threading
import time
import wave
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.amplifier import Amplifier
from edge.audio_output import FileSink
from edge.commands import CommandHandler
from edge.loop import Reactor
from edge.media import MediaFetcher
from edge.media_cache import MediaCache
from edge.outbox import Outbox
from edge.plans import PlanKeeper
from edge.scheduler import Job, LocalScheduler
from edge.store import NodeStore
from edge.telemetry import ClockSource
from edge.trust import Gate
from mqtt_contract import (
    DEFAULT_QUIET_HOURS,
    PLAYBACK,
    ClockState,
    Command,
    CommandKind,
    ContractError,
    MediaRef,
    Message,
    Plan,
    PlanItem,
    PlaybackEvent,
    Priority,
    Target,
    parse,
)
from mqtt_contract import MediaRequest as MediaRequestModel
from tests.conftest import wait_for
from tests.trust_helpers import throwaway_signer


@pytest.fixture
def loop():  # type: ignore[no-untyped-def]
    reactor = Reactor("test-parts")
    reactor.start()
    yield reactor
    reactor.stop()


def tone(path: Path, seconds: float, rate: int = 8000) -> tuple[MediaRef, Path]:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x10" * int(seconds * rate))
    data = path.read_bytes()
    return MediaRef(sha256=hashlib.sha256(data).hexdigest(), size=len(data), codec="wav",
                    duration_s=seconds), path


# --------------------------------------------------------------------------- loop
def test_loop_runs_timers_in_order_and_hands_over_from_threads(loop: Reactor) -> None:
    seen: list[str] = []
    loop.run_in_loop(lambda: (loop.call_later(0.2, seen.append, "late"),
                              loop.call_later(0.05, seen.append, "early"),
                              loop.call_later(0.1, seen.append, "cancelled").cancel()))
    threading.Thread(target=loop.call_soon_threadsafe, args=(seen.append, "thread")).start()
    wait_for(lambda: "late" in seen, 5, what="the timers")
    assert seen == ["thread", "early", "late"]


def test_blocking_work_runs_off_the_loop_and_reports_back_on_it(loop: Reactor) -> None:
    result: list[tuple[object, bool]] = []

    def work() -> str:
        assert not loop.in_loop()
        return "decoded"

    loop.run_in_loop(lambda: loop.run_blocking(
        work, lambda value, error: result.append((value, loop.in_loop()))))
    wait_for(lambda: result, 5, what="the result")
    assert result == [("decoded", True)]


def test_a_failing_callback_does_not_stop_the_loop(loop: Reactor) -> None:
    seen: list[int] = []
    loop.call_soon_threadsafe(lambda: 1 / 0)
    loop.call_soon_threadsafe(seen.append, 1)
    wait_for(lambda: seen, 5, what="the next callback")


# --------------------------------------------------------------------------- outbox
def test_outbox_keeps_messages_until_acknowledged_and_resends_after_a_drop(
        tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "n.sqlite3")
    sent: list[str] = []
    mids = iter(range(1, 100))
    outbox = Outbox(store, lambda msg: (sent.append(msg.topic), next(mids))[1])
    outbox.put("r1", Message("t/1", b"a", 1, False))  # offline: stored only
    assert sent == [] and outbox.pending_count() == 1
    outbox.online()
    assert sent == ["t/1"]
    outbox.put("r1", Message("t/1", b"a", 1, False))  # the same id again: ignored
    outbox.put("r2", Message("t/2", b"b", 1, False))
    assert sent == ["t/1", "t/2"] and outbox.pending_count() == 2
    outbox.acknowledged(1)
    assert outbox.pending_count() == 1
    outbox.offline()
    outbox.online()  # the unacknowledged one goes again
    assert sent[-1] == "t/2" and outbox.pending_count() == 1
    store.close()


def test_outbox_stops_when_the_link_refuses(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "n.sqlite3")
    outbox = Outbox(store, lambda msg: None)
    outbox.online()
    outbox.put("r1", Message("t/1", b"a", 1, False))
    assert outbox.pending_count() == 1
    store.close()


# --------------------------------------------------------------------------- media
def test_media_fetcher_asks_for_missing_chunks_and_reports_completion(
        tmp_path: Path, loop: Reactor) -> None:
    data = bytes(range(256)) * 300  # 76,800 bytes: 3 chunks of 32 KiB
    ref = MediaRef(sha256=hashlib.sha256(data).hexdigest(), size=len(data), codec="mp3",
                   duration_s=5)
    requests: list[MediaRequestModel] = []
    done: list[str] = []
    fetcher = MediaFetcher(loop, MediaCache(tmp_path), "xa-demo", "n1", 0.5,
                           lambda msg: requests.append(parse(MediaRequestModel, msg.payload)),
                           lambda r: done.append(r.sha256))
    size = ref.chunk_size
    loop.run_in_loop(lambda: (fetcher.set_online(True), fetcher.want(ref),
                              fetcher.chunk(ref.sha256, 1, data[size:2 * size])))
    wait_for(lambda: requests, 5, what="a media request")
    assert requests[0].chunks == [0, 2] and requests[0].node == "n1"
    loop.run_in_loop(lambda: (fetcher.chunk(ref.sha256, 0, data[:size]),
                              fetcher.chunk(ref.sha256, 2, data[2 * size:])))
    assert done == [ref.sha256] and fetcher.wants == {}


# --------------------------------------------------------------------------- commands
def make_scheduler(tmp_path: Path, loop: Reactor, reports: list) -> LocalScheduler:
    store = NodeStore(tmp_path / "node.sqlite3")
    return LocalScheduler(
        loop, store, MediaCache(tmp_path / "cache"), FileSink(tmp_path / "sink"),
        Amplifier(None, 0.0), lambda job, event, *rest: reports.append((job.item_id, event)),
        lambda ref: None, lambda: 80, DEFAULT_QUIET_HOURS, "Asia/Ho_Chi_Minh", 0.5,
        tmp_path / "prepared")


def signing_gate(tmp_path: Path, store: NodeStore):  # type: ignore[no-untyped-def]
    """A gate for node n1 of xa-demo trusting one key, and a signer with that key."""
    signer = throwaway_signer(tmp_path / "key")
    gate = Gate("n1", "xa-demo", ["z1"], signer.folder.public_keys(), store)
    return gate, lambda msg: signer.sign(msg, "xa-demo", Target.node, "n1", 60)


def test_commands_change_settings_and_refuse_what_is_incomplete(tmp_path: Path,
                                                                 loop: Reactor) -> None:
    scheduler = make_scheduler(tmp_path, loop, [])
    gate, sign = signing_gate(tmp_path, scheduler.store)
    handler = CommandHandler("n1", scheduler.store, scheduler, lambda ref: None,
                             lambda ref, path: None, lambda: None, tmp_path / "tone", gate)
    reply = handler.handle(sign(Command(kind=CommandKind.volume, volume=35)))
    assert reply.ok and scheduler.store.get_setting("volume") == "35"
    with pytest.raises(ContractError):
        handler.handle(sign(Command(kind=CommandKind.volume)))
    with pytest.raises(ContractError):
        handler.handle(sign(Command(kind=CommandKind.play)))
    stop = loop.run_in_loop(lambda: handler.handle(sign(Command(kind=CommandKind.stop))))
    assert (stop.ok, stop.detail) == (False, "nothing was playing")
    assert not handler.handle(sign(Command(kind=CommandKind.reboot))).ok
    assert handler.handle(Command(kind=CommandKind.volume, volume=1)) is None  # unsigned
    assert scheduler.store.get_setting("volume") == "35"


# --------------------------------------------------------------------------- plans
def test_plans_apply_only_when_newer_and_only_for_this_node(tmp_path: Path,
                                                            loop: Reactor) -> None:
    scheduler = make_scheduler(tmp_path, loop, [])
    gate, sign = signing_gate(tmp_path, scheduler.store)
    wanted: list[str] = []
    keeper = PlanKeeper("n1", scheduler.store, scheduler.cache, scheduler,
                        lambda ref: wanted.append(ref.sha256), gate)
    ref = MediaRef(sha256="ab" * 32, size=10, duration_s=1)
    item = PlanItem(id="s1-1", media=ref, start_at=datetime(2030, 1, 1, tzinfo=UTC))
    first = sign(Plan(node="n1", version=5, items=[item]))
    assert loop.run_in_loop(lambda: keeper.apply(first))
    assert not loop.run_in_loop(lambda: keeper.apply(first))  # the same one again
    assert not loop.run_in_loop(lambda: keeper.apply(Plan(node="n1", version=6)))  # unsigned
    with pytest.raises(ContractError):  # signed for n1 but about n2
        keeper.apply(sign(Plan(node="n2", version=9)))
    assert keeper.version == 5 and wanted == [ref.sha256]


# --------------------------------------------------------------------------- scheduler
def test_scheduler_preempts_a_lower_priority_item_on_the_loop(tmp_path: Path,
                                                              loop: Reactor) -> None:
    reports: list[tuple[str, PlaybackEvent]] = []
    scheduler = make_scheduler(tmp_path, loop, reports)
    ref, path = tone(tmp_path / "tone.wav", 3.0)
    scheduler.cache.put_file(ref, path)
    now = time.time()
    plan = Plan(node="n1", version=1, items=[PlanItem(
        id="s1-1", media=ref, start_at=datetime.fromtimestamp(now + 0.2, UTC),
        priority=Priority.priority)])
    loop.run_in_loop(lambda: (scheduler.set_plan(plan), scheduler.start()))
    wait_for(lambda: ("s1-1", PlaybackEvent.started) in reports, 10, what="the plan item")
    loop.run_in_loop(lambda: scheduler.submit(
        Job("e1", ref, time.time(), Priority.emergency, "emergency")))
    wait_for(lambda: ("e1", PlaybackEvent.finished) in reports, 15, what="the emergency")
    assert ("s1-1", PlaybackEvent.preempted) in reports
    assert reports.index(("s1-1", PlaybackEvent.preempted)) < reports.index(
        ("e1", PlaybackEvent.started))
    loop.run_in_loop(scheduler.close)
    scheduler.store.close()


def test_scheduler_holds_ordinary_items_in_quiet_hours(tmp_path: Path, loop: Reactor) -> None:
    from mqtt_contract import QuietWindow

    reports: list[tuple[str, PlaybackEvent]] = []
    scheduler = make_scheduler(tmp_path, loop, reports)
    scheduler.quiet_hours = QuietWindow(start="00:00", end="23:59")
    ref, path = tone(tmp_path / "tone.wav", 0.2)
    scheduler.cache.put_file(ref, path)
    loop.run_in_loop(lambda: (scheduler.start(), scheduler.submit(
        Job("r1", ref, time.time(), Priority.ordinary, "reminder")), scheduler.submit(
        Job("e1", ref, time.time(), Priority.emergency, "emergency"))))
    wait_for(lambda: ("e1", PlaybackEvent.finished) in reports, 10, what="the emergency")
    assert ("r1", PlaybackEvent.skipped) in reports
    loop.run_in_loop(scheduler.close)
    scheduler.store.close()


# --------------------------------------------------------------------------- telemetry
def test_clock_source_reads_at_most_once_per_ttl() -> None:
    calls: list[int] = []
    clock = ClockSource(lambda: (calls.append(1), ClockState(synced=True, offset_ms=1.0))[1])
    assert clock.state().offset_ms == 1.0 and clock.state().synced
    assert len(calls) == 1


def test_playback_reports_use_the_declared_topic() -> None:
    msg = PLAYBACK.message("xa-demo", b"{}", node="n1")
    assert msg.topic.endswith("/node/n1/playback") and msg.qos == 1 and not msg.retain
