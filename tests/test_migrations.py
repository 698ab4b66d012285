"""Alembic on SQLite and PostgreSQL: the migrations build exactly the models' schema, go
down to nothing and up again, and the move to many communes keeps every row of a
one-commune database.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select, text

from controller.db import MIGRATIONS, Database
from controller.models import Announcement, Base, Commune, NodeGroup, Schedule, Upload, User
from tests.test_database import postgres_url


def alembic(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.sqlite3'}"
    else:
        yield from postgres_url()


def schema_drift(url: str) -> list:
    """What autogenerate would still change: nothing, when the migrations match (column
    types aside: the enum columns' lengths differ in name only)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={
                "compare_type": False}), Base.metadata)
    finally:
        engine.dispose()
    return list(diff)


def test_the_migrations_build_the_models_schema_and_go_down_and_up(url: str) -> None:
    cfg = alembic(url)
    command.upgrade(cfg, "head")
    assert schema_drift(url) == []
    command.downgrade(cfg, "base")
    engine = create_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    command.upgrade(cfg, "head")
    assert schema_drift(url) == []


def test_a_one_commune_database_keeps_every_row_when_communes_come(url: str) -> None:
    cfg = alembic(url)
    command.upgrade(cfg, "0010")
    engine = create_engine(url)
    now = datetime.now(UTC)
    rows = {
        "nodes": "INSERT INTO nodes (commune, node_id, name, zones, online, plan_version) "
                 "VALUES ('xa-cu', 'node-1', 'Cổng chợ', '[\"thon-1\"]', false, 0)",
        "zones": "INSERT INTO zones (commune, code, name, quiet_start, quiet_end) "
                 "VALUES ('xa-cu', 'thon-1', 'Thôn 1', '22:00', '06:00')",
        "announcements": "INSERT INTO announcements (title, text, created_at, created_by, "
                         "status, engine_requested, repeat) VALUES ('Họp', 'Họp thôn.', "
                         ":now, 'staff', 'draft', 'auto', 1)",
        "node_groups": "INSERT INTO node_groups (name, node_ids) VALUES ('cho', '[\"node-1\"]')",
        "users": "INSERT INTO users (username, full_name, role, password_hash, active, "
                 "created_at) VALUES ('staff', 'Cán bộ', 'staff', 'x', true, :now)",
        "calendar_exceptions": "INSERT INTO calendar_exceptions (day, commune, name) "
                               "VALUES (:day, NULL, 'Tết')",
        "uploads": "INSERT INTO uploads (sha256, format, duration_s, size, original_name, "
                   "uploaded_by, created_at) VALUES ('" + "ab" * 32 + "', 'mp3', 3.5, 900, "
                   "'hop.mp3', 'staff', :now)",
    }
    try:
        with engine.begin() as conn:
            for sql in rows.values():
                conn.execute(text(sql), {"now": now, "day": date(2031, 1, 23)})
            aid = conn.execute(text("SELECT id FROM announcements")).scalar_one()
            conn.execute(text(
                "INSERT INTO schedules (announcement_id, targets, kind, start_at, timezone, "
                "priority, repeat, status, created_by, created_at, published_ms) VALUES "
                "(:a, '{\"all\": true}', 'once', :now, 'Asia/Ho_Chi_Minh', 'priority', 1, "
                "'active', 'staff', :now, 0)"), {"a": aid, "now": now})
        before = {t: _count(engine, t) for t in (*rows, "schedules")}
    finally:
        engine.dispose()
    command.upgrade(cfg, "head")
    db = Database(url)
    try:
        after = {t: _count(db.engine, t) for t in before}
        assert after == before, "every row kept"
        with db.session() as s:
            assert [(c.code, c.name) for c in s.scalars(select(Commune))] == [("xa-cu", "xa-cu")]
            assert s.scalars(select(Announcement)).one().commune == "xa-cu"
            assert s.scalars(select(Schedule)).one().commune == "xa-cu"
            assert s.scalars(select(NodeGroup)).one().commune == "xa-cu"
            assert s.scalars(select(User)).one().commune is None  # still sees everything
            assert s.scalars(select(Upload)).one().commune == "xa-cu"  # 0014
        with db.session(commune="xa-cu") as s:  # its commune's accounts now see its rows
            assert s.scalars(select(Schedule)).one().announcement.text == "Họp thôn."
    finally:
        db.dispose()


def _count(engine, table: str) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
