"""The dashboard at a glance in chromium: plays and minutes per day for 30 days, nodes online
over time (sampled by the runtime), alerts per day by kind, and a node offline longer than
the setting standing out; at desktop and phone sizes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import wait_for
from tests.web.conftest import DESKTOP, PHONE, login, screenshot


@pytest.fixture
def controller_settings(controller_settings):  # type: ignore[no-untyped-def]
    controller_settings.offline_alert_min = 0.02
    return controller_settings


def seed(server) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Three days of plays, two kinds of alerts, and online counts, through the services
    the MQTT handlers use (the reports and alerts a node would send)."""
    from controller import localtime
    from controller.services import alerts, playback, stats
    from mqtt_contract import Alert, PlaybackReport

    now = datetime.now(UTC)
    runtime = server.runtime
    plays = {0: 3, 2: 2, 9: 1}  # days ago → plays of 90 s
    with runtime.db.session() as s:
        for ago, count in plays.items():
            at = now - timedelta(days=ago)
            for i in range(count):
                assert playback.record_report(s, "xa-demo", PlaybackReport(
                    node="node-1", item_id=f"s1@{int(at.timestamp()) + i}", event="finished",
                    planned_at=at, actual_at=at, duration_s=90))
        for ago, kind in ((0, "no_helmet"), (0, "no_helmet"), (1, "dumping"), (4, "no_helmet")):
            assert alerts.record_alert(s, "xa-demo", Alert(
                id=uuid.uuid4().hex, node="node-3", camera="cong-truong", kind=kind,
                at=now - timedelta(days=ago), confidence=0.8), runtime.media)
        for hours in (50, 30, 10):
            stats.record_online(s, 30, now=now - timedelta(hours=hours))
    return {"today": plays[0], "days_with_plays": len(plays),
            "today_label": f"{localtime.today():%d/%m}"}


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_dashboard_shows_the_station_at_a_glance(live_server, start_node, new_page, size):
    agent = start_node("node-2")
    wait_for(lambda: _online(live_server, "node-2"), 10, what="node-2 online")
    agent.stop(graceful=False)
    wait_for(lambda: not _online(live_server, "node-2"), 15, what="node-2 offline")
    wait_for(lambda: "node-2" in _long_offline(live_server), 10,
             what="node-2 offline longer than the setting")
    facts = seed(live_server)
    live_server.runtime.sample_online()  # the runtime's periodic job, run now
    page = new_page(size)
    login(page, live_server, "leader", "/dashboard")

    plays = page.locator("#chart-plays rect.bar")
    assert plays.count() == facts["days_with_plays"]
    titles = [plays.nth(i).locator("title").text_content() for i in range(plays.count())]
    assert f"{facts['today_label']}: {facts['today']} lượt" in titles
    minutes = page.locator("#chart-minutes rect.bar title")
    assert f"{facts['today_label']}: 4,5 phút" in minutes.all_text_contents()
    assert page.locator("#chart-online path.line").get_attribute("d").count("L") == 3
    legend = page.inner_text("#chart-alerts .legend")
    assert "Không đội mũ bảo hiểm" in legend and "Đổ rác" in legend
    assert page.locator("#chart-alerts rect.bar").count() == 3  # today, yesterday, 4 days ago

    # node-2 has been offline longer than the setting: it stands out, by name
    assert "Thôn 1 – Ngã ba chợ" in page.inner_text("#long-offline")
    assert "long-offline" in (page.get_attribute("#node-list tr[data-node='node-2']", "class")
                              or "")
    assert page.locator("#node-list tr.long-offline").count() == 1  # never-seen nodes do not
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= size["width"], f"the page is {width} px wide"
    screenshot(page, f"dashboard-{'phone' if size is PHONE else 'desktop'}")


def test_online_samples_are_bounded(live_server):
    from sqlalchemy import func, select

    from controller.models import OnlineSample
    from controller.services import stats

    now = datetime.now(UTC)
    with live_server.runtime.db.session() as s:
        stats.record_online(s, 30, now=now - timedelta(days=40))
        stats.record_online(s, 30, now=now - timedelta(days=31))
    with live_server.runtime.db.session() as s:
        stats.record_online(s, 30, now=now)
    with live_server.runtime.db.session() as s:
        ats = list(s.scalars(select(OnlineSample.at)))
        assert len(ats) == 1 and ats[0] >= now - timedelta(seconds=1)
        assert s.scalar(select(func.max(OnlineSample.total))) == 3


def _online(server, node_id: str) -> bool:  # type: ignore[no-untyped-def]
    from controller.services import fleet

    with server.runtime.db.session() as s:
        return any(n.online for n in fleet.list_nodes(s) if n.node_id == node_id)


def _long_offline(server) -> dict:  # type: ignore[no-untyped-def]
    from controller.services import fleet, stats

    with server.runtime.db.session() as s:
        return stats.long_offline(fleet.list_nodes(s), server.runtime.settings.offline_alert_min)
