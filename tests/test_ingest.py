"""Node reports written in batches: once each, the newest telemetry, statuses in order,
and nothing lost when the queue is full or another replica wrote first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from controller.db import Database
from controller.models import Node, PlaybackLog
from controller.runtime import Runtime
from controller.services import ingest
from controller.services.ingest import Incoming, IngestQueue, IngestWriter
from controller.settings import Settings
from mqtt_contract import ClockState, PlaybackEvent, PlaybackReport, Status, Telemetry
from tests.conftest import wait_for
from tests.test_database import database  # noqa: F401  (the SQLite/PostgreSQL fixture)


def report(node: str, item: str, event: PlaybackEvent = PlaybackEvent.started
           ) -> PlaybackReport:
    now = datetime.now(UTC)
    return PlaybackReport(node=node, item_id=item, event=event, planned_at=now,
                          actual_at=now + timedelta(milliseconds=5))


def telemetry(node: str, plan_version: int) -> Telemetry:
    return Telemetry(node=node, uptime_s=1.0, disk_free_mb=100.0, volume=80,
                     plan_version=plan_version, clock=ClockState(synced=True))


def test_a_batch_stores_each_report_once_and_keeps_the_newest_of_the_rest(
        database: Database) -> None:  # noqa: F811
    first = report("node-1", "s1-100")
    with database.session() as s:
        ingest.write_batch(s, [Incoming("xa-demo", first)])
    batch = [
        Incoming("xa-demo", Status(node="node-2", online=True, zones=["thon-1"])),
        Incoming("xa-demo", telemetry("node-2", 5)),
        Incoming("xa-demo", first),  # a replay of a stored one
        Incoming("xa-demo", report("node-2", "s1-100")),
        Incoming("xa-demo", telemetry("node-2", 7)),  # the newest wins
        Incoming("xa-demo", Status(node="node-2", online=False)),  # then gone
    ]
    replayed = report("node-2", "s1-100")
    batch.append(Incoming("xa-demo", replayed))
    batch.append(Incoming("xa-demo", replayed))  # twice in one batch
    with database.session() as s:
        assert ingest.write_batch(s, batch) == 2
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(PlaybackLog)) == 3
        node = s.scalar(select(Node).where(Node.node_id == "node-2"))
        assert node is not None
        assert node.plan_version_acked == 7 and node.online is False
        assert node.zones == ["thon-1"]  # a node never seen before was created
    # heartbeats alone, one of a node never seen: it is registered and both are written
    with database.session() as s:
        ingest.write_batch(s, [Incoming("xa-demo", telemetry("node-3", 4)),
                               Incoming("xa-demo", telemetry("node-2", 9))])
    with database.session() as s:
        acked = dict(list(s.execute(select(Node.node_id, Node.plan_version_acked)).tuples()))
        assert acked == {"node-2": 9, "node-3": 4}
        assert s.scalar(select(Node.telemetry).where(Node.node_id == "node-3"))["volume"] == 80


def test_the_writer_writes_what_gathers_and_everything_left_when_it_stops() -> None:
    queue, written = IngestQueue(), []
    writer = IngestWriter(queue, written.append, flush_s=0.05)
    writer.start()
    for i in range(5):
        queue.put(Incoming("xa-demo", report("node-1", f"s1-{i}")))
    wait_for(lambda: sum(map(len, written)) == 5, 5, what="the batch written")
    assert len(written) <= 2  # gathered, not one transaction per report
    writer._stop.set()  # stopping: what arrives now is written by stop()
    writer._thread.join(5)
    queue.put(Incoming("xa-demo", report("node-1", "s1-late")))
    writer.stop()
    assert sum(map(len, written)) == 6


def test_a_full_queue_writes_in_place_and_a_clash_falls_back_to_one_by_one(
        tmp_path: Path) -> None:
    runtime = Runtime(Settings(data_dir=tmp_path))
    from controller.db import migrate

    migrate(runtime.db.url)
    try:
        runtime.ingest = IngestQueue(capacity=1)
        runtime._queue_report(Incoming("xa-demo", report("node-1", "s1-1")))
        runtime._queue_report(Incoming("xa-demo", report("node-1", "s1-2")))
        with runtime.db.session() as s:  # the second did not fit: it is stored already
            assert s.scalar(select(func.count()).select_from(PlaybackLog)) == 1
        runtime.ingest_writer = IngestWriter(runtime.ingest, runtime._write_reports)
        runtime.ingest_writer.flush()
        stored = report("node-1", "s1-3")
        with runtime.db.session() as s:  # another replica stores it first
            ingest.write_one(s, Incoming("xa-demo", stored))
        clash = [Incoming("xa-demo", report("node-1", "s1-4")),
                 Incoming("xa-demo", stored)]
        real_store = ingest._store_reports

        def blind(session, reports):  # type: ignore[no-untyped-def]
            """As if the other replica's row had not been visible when the batch looked."""
            for commune, r in reports:
                session.add(ingest.playback.log_row(commune, r))
            return len(reports)

        ingest._store_reports = blind  # type: ignore[assignment]
        try:
            runtime._write_reports(clash)
        finally:
            ingest._store_reports = real_store  # type: ignore[assignment]
        with runtime.db.session() as s:
            ids = set(s.scalars(select(PlaybackLog.item_id)))
        assert ids == {"s1-1", "s1-2", "s1-3", "s1-4"}
    finally:
        runtime.db.dispose()
