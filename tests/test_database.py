"""The same models and migrations on SQLite and PostgreSQL; reports are stored once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from controller.db import Database, migrate
from controller.models import Announcement, PlaybackLog, Schedule
from controller.services.deliveries import deliveries_for
from controller.services.fleet import get_or_create_node
from controller.services.plans import CompileContext, compile_plan
from controller.services.playback import record_report
from mqtt_contract import PlaybackEvent, PlaybackReport

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def postgres_url() -> Iterator[str]:
    try:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            name = f"loaxa_test_{uuid.uuid4().hex[:8]}"
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432 ({type(exc).__name__})")
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path / 'c.sqlite3'}"])
    else:
        urls = postgres_url()
    url = next(urls)
    migrate(url)
    db = Database(url)
    yield db
    db.dispose()
    next(urls, None)


def test_migrated_schema_plans_and_idempotent_reports(database: Database) -> None:
    start = datetime.now(UTC) + timedelta(minutes=5)
    with database.session() as s:
        node = get_or_create_node(s, "xa-demo", "node-1")
        a = Announcement(text="Xin chào", status="scheduled", media_sha256="a" * 64,
                         media_size=1000, media_codec="mp3", duration_s=2.0)
        s.add(a)
        s.flush()
        s.add(Schedule(announcement_id=a.id, targets={"all": True}, kind="once",
                       start_at=start, priority="priority"))
        s.flush()
        plan = compile_plan(s, node, CompileContext.load(s, timedelta(hours=48)))
        assert len(plan.items) == 1 and plan.items[0].start_at == start
        item, version = plan.items[0].id, plan.version
    report = PlaybackReport(node="node-1", item_id=item, event=PlaybackEvent.finished,
                            planned_at=start, actual_at=start, duration_s=2.0)
    with database.session() as s:
        assert record_report(s, "xa-demo", report)
    with database.session() as s:
        assert not record_report(s, "xa-demo", report)  # replayed: changes nothing
        assert s.query(PlaybackLog).count() == 1
        views = deliveries_for(s, list(s.scalars(select(Schedule))), start - timedelta(1),
                               start + timedelta(1))
        assert [(v.node_id, v.status, v.duration_s) for v in views] == [
            ("node-1", "finished", 2.0)]
        node = get_or_create_node(s, "xa-demo", "node-1")
        ctx = CompileContext.load(s, timedelta(hours=48))
        assert compile_plan(s, node, ctx).version > version


def test_one_replica_holds_the_plan_lease_until_it_expires(database: Database) -> None:
    from controller.services.leadership import PLAN_COMPILER, acquire

    t0, ttl = datetime.now(UTC), timedelta(seconds=90)
    with database.session() as s:
        assert acquire(s, PLAN_COMPILER, "replica-a", ttl, t0)
    with database.session() as s:
        assert not acquire(s, PLAN_COMPILER, "replica-b", ttl, t0 + timedelta(seconds=10))
        assert acquire(s, PLAN_COMPILER, "replica-a", ttl, t0 + timedelta(seconds=30))
    with database.session() as s:  # replica-a stopped renewing: b takes over
        assert acquire(s, PLAN_COMPILER, "replica-b", ttl, t0 + timedelta(seconds=200))
        assert not acquire(s, PLAN_COMPILER, "replica-a", ttl, t0 + timedelta(seconds=210))
