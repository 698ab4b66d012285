"""The broadcast report people open in Excel: names (never ids), Vietnamese headers, the
BOM that makes Excel read UTF-8, a workbook per day or month, local days."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from controller.db import Database, migrate
from controller.domain import Targets
from controller.models import Announcement, Node, PlaybackLog, Schedule, Zone
from controller.services import reports
from controller.services.item_ids import item_id


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    migrate(url)
    database = Database(url)
    yield database
    database.dispose()


def played(session, schedule: Schedule, node: str, at: datetime, seconds: float) -> None:  # type: ignore[no-untyped-def]
    iid = item_id(schedule.id, at)
    session.add(PlaybackLog(report_id=f"{iid}-{node}", commune="xa-demo", node_id=node,
                            item_id=iid, event="finished", planned_at=at, actual_at=at,
                            duration_s=seconds))


def seed(db: Database) -> None:
    with db.session() as s:
        s.add_all([Node(commune="xa-demo", node_id="node-1", name="Loa chợ", zones=["thon-1"]),
                   Node(commune="xa-demo", node_id="node-2", name="", zones=["thon-2"]),
                   Zone(commune="xa-demo", code="thon-1", name="Thôn Đông")])
        a = Announcement(text="Họp thôn.", title="Họp thôn", status="scheduled")
        s.add(a)
        s.flush()
        sched = Schedule(announcement_id=a.id, targets=Targets.everyone(), kind="once",
                         start_at=datetime(2026, 12, 1, tzinfo=UTC), status="active")
        s.add(sched)
        s.flush()
        # 23:30 local on 1 Dec is 16:30 UTC; 00:30 local on 2 Dec is 17:30 UTC on 1 Dec
        played(s, sched, "node-1", datetime(2026, 12, 1, 16, 30, tzinfo=UTC), 90)
        played(s, sched, "node-2", datetime(2026, 12, 1, 17, 30, tzinfo=UTC), 30)
        played(s, sched, "node-1", datetime(2026, 12, 20, 2, 0, tzinfo=UTC), 60)


def test_a_day_is_the_communes_local_day_and_rows_carry_names(db):
    seed(db)
    with db.session() as s:
        first = reports.daily_report(s, date(2026, 12, 1))
        second = reports.daily_report(s, date(2026, 12, 2))
    assert [(r["name"], r["plays"]) for r in first["per_node"]] == [("Loa chợ", 1)]
    assert [(r["name"], r["plays"]) for r in second["per_zone"]] == [("Thôn 2", 1)]
    assert [r["name"] for r in first["per_item"]] == ["Họp thôn"]


def test_csv_has_vietnamese_headers_a_bom_and_minutes(db):
    seed(db)
    with db.session() as s:
        text = reports.report_csv(reports.monthly_report(s, 2026, 12))
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert list(rows[0]) == reports.HEADERS
    by = {(r["Theo"], r["Tên"]): r for r in rows}
    assert by[("Bản tin", "Họp thôn")]["Số lần phát"] == "3"
    assert by[("Bản tin", "Họp thôn")]["Tổng thời lượng (phút)"] == "3.0"
    assert by[("Thôn/khu", "Thôn Đông")]["Số lần phát"] == "2"
    assert by[("Cụm loa", "Loa chợ")]["Kỳ báo cáo"] == "2026-12-01 – 2026-12-31"
    assert not any("node-" in r["Tên"] for r in rows), "an id where a name belongs"
    assert ("Cụm loa", "Cụm loa chưa đặt tên (Thôn 2)") in by


def test_the_workbook_has_one_sheet_per_view(db):
    seed(db)
    with db.session() as s:
        data = reports.report_xlsx(reports.monthly_report(s, 2026, 12))
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["Bản tin", "Cụm loa", "Thôn-khu"]
    sheet = book["Bản tin"]
    assert [c.value for c in sheet[1]] == reports.HEADERS
    assert [c.value for c in sheet[2]][2:] == ["Họp thôn", 3, 3.0]
    assert sheet["A1"].font.bold


def test_the_month_ends_on_its_last_local_day(db):
    with db.session() as s:
        assert reports.monthly_report(s, 2026, 12)["period"] == "2026-12-01/2026-12-31"
        assert reports.monthly_report(s, 2028, 2)["period"] == "2028-02-01/2028-02-29"
