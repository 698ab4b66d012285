"""The same models and migrations on SQLite and PostgreSQL; reports are stored once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from controller.db import Database, migrate
from controller.models import Announcement, Delivery, PlaybackLog
from controller.services.fleet import get_or_create_node
from controller.services.plans import compile_plan
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
        a = Announcement(text="Xin chào", start_at=start, media_sha256="a" * 64,
                         media_size=1000, media_codec="mp3", duration_s=2.0)
        s.add(a)
        s.flush()
        s.add(Delivery(announcement_id=a.id, node_pk=node.id, planned_at=start))
        s.flush()
        plan = compile_plan(s, node, timedelta(hours=48))
        assert [i.id for i in plan.items] == [a.item_id]
        assert plan.items[0].start_at == start
        version = plan.version
    report = PlaybackReport(node="node-1", item_id=f"a{a.id}", event=PlaybackEvent.finished,
                            planned_at=start, actual_at=start, duration_s=2.0)
    with database.session() as s:
        assert record_report(s, "xa-demo", report)
    with database.session() as s:
        assert not record_report(s, "xa-demo", report)  # replayed: changes nothing
        assert s.query(PlaybackLog).count() == 1
        delivery = s.query(Delivery).one()
        assert delivery.status == "finished" and delivery.duration_s == 2.0
        node = get_or_create_node(s, "xa-demo", "node-1")
        assert compile_plan(s, node, timedelta(hours=48)).version > version
