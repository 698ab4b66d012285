"""A leader runs an emergency from the page: writes it, chooses the zones, confirms,
sees it play on the nodes by its title (never an id), and stops it; on a phone too."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.conftest import wait_for
from tests.web.conftest import PHONE, login, screenshot

ID_SHAPED = re.compile(r"\bs\d+-\d{9,}\b|\b[0-9a-f]{12,}\b")


def reports_for(server, item_prefix: str, event: str) -> set[str]:  # type: ignore[no-untyped-def]
    from controller.models import PlaybackLog

    with server.runtime.db.session() as s:
        return set(s.scalars(select(PlaybackLog.node_id).where(
            PlaybackLog.item_id.startswith(item_prefix), PlaybackLog.event == event)))


def active_item(server) -> str:  # type: ignore[no-untyped-def]
    from controller.services import emergency

    with server.runtime.db.session() as s:
        active = emergency.active_emergencies(s)
        return f"s{active[0].id}-" if active else ""


def test_a_leader_sends_and_stops_an_emergency_from_the_page(live_server, start_node,
                                                              new_page):
    agents = {n: start_node(n) for n in ("node-1", "node-2", "node-3")}
    zones = {z for a in agents.values() for z in a.config.zones}
    assert len(zones) >= 2, "the test fleet should have nodes in several zones"
    page = new_page()
    login(page, live_server, "leader", "/emergency")
    assert page.url.endswith("/emergency")
    assert "Không có bản tin khẩn cấp nào đang phát" in page.inner_text("#on-air")

    # nothing is sent without the confirmation step, and a bad form says why in Vietnamese
    page.click("#send-button")
    assert page.inner_text("#em-error") == "Hãy nhập nội dung sẽ đọc trên loa."
    page.fill("#em-title", "Cảnh báo lũ")
    page.fill("#em-text", "Nước sông đang lên nhanh. Bà con thôn một di chuyển lên chỗ cao.")
    assert page.inner_text("#em-count").startswith("64/5000")
    page.check("input[name=reach][value=zones]")
    page.click("#send-button")
    assert page.inner_text("#em-error") == "Hãy chọn ít nhất một thôn/khu."
    first_zone = page.locator("input[name=zone]").first
    first_zone.check()
    page.click("#send-button")
    question = page.inner_text("#send-question")
    assert question.startswith("Phát ngay «Cảnh báo lũ» 2 lần tới")
    assert not active_item(live_server), "sent before the confirmation"
    screenshot(page, "emergency-confirm")
    page.click("#send-yes")
    page.wait_for_selector("#toast:not([hidden])")
    assert "Đã phát khẩn cấp tới" in page.inner_text("#toast")

    item = active_item(live_server)
    zone = first_zone.get_attribute("value")
    reached = {n for n, a in agents.items() if zone in a.config.zones}
    wait_for(lambda: reports_for(live_server, item, "started") >= reached, 30,
             what="the zone's nodes to start the emergency")
    assert not reports_for(live_server, item, "started") - reached, "played outside the zone"

    # the page shows it by title, and what the nodes play, never an id
    wait_for(lambda: any((a.scheduler.now_playing() is not None) for a in agents.values()), 10,
             what="a node playing")
    page.goto(live_server.url("/emergency"))
    on_air = page.inner_text("#on-air")
    assert "Cảnh báo lũ" in on_air
    assert not ID_SHAPED.search(on_air), on_air
    screenshot(page, "emergency")

    page.click("#stop-button")
    assert page.is_visible("#stop-confirm")
    page.click("#stop-yes")
    page.wait_for_selector("#toast:not([hidden])")
    assert "Đã dừng phát" in page.inner_text("#toast")
    wait_for(lambda: not active_item(live_server), 10, what="the emergency to end")
    wait_for(lambda: all(a.scheduler.now_playing() is None for a in agents.values()), 15,
             what="every node to stop")


def test_the_emergency_page_and_folded_menu_fit_a_phone_for_leaders_only(live_server, new_page):
    staff = new_page()
    login(staff, live_server, "staff", "/emergency")
    assert "Không có quyền truy cập" in staff.inner_text("main")
    assert "Khẩn cấp" not in staff.inner_text("header nav")

    phone = new_page(PHONE)
    login(phone, live_server, "leader", "/emergency")
    # the menu folds into one button on a phone; opened, every page is in sight
    assert not phone.is_visible("header nav a[href='/emergency']")
    phone.click("#menu-toggle")
    assert phone.get_attribute("#menu-toggle", "aria-expanded") == "true"
    for link in phone.locator("header nav a").all():
        box = link.bounding_box()
        assert link.is_visible() and box and box["x"] + box["width"] <= PHONE["width"], (
            f"{link.inner_text()} is out of sight")
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide on a {PHONE['width']} px phone"
    screenshot(phone, "emergency-phone")
