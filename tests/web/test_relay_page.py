"""The relay page (tiếp sóng) in a real chromium: an admin adds a station, staff
schedule a slot with the schedule form (a slot in quiet hours is refused in words), a
leader approves it; it fits a phone (issue 11, item 3)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from controller.localtime import zone
from tests.web.conftest import PHONE, login, screenshot

pytestmark = pytest.mark.slow


def test_a_station_and_a_slot_are_run_from_the_relay_page(live_server: Any,
                                                          new_page: Any) -> None:
    admin = new_page()
    login(admin, live_server, "admin", "/relay")
    expect(admin.locator("h1")).to_have_text("Tiếp sóng")
    expect(admin.locator("#stations")).to_contain_text("Chưa có đài nào")
    admin.fill("#station-name", "Đài tỉnh")
    admin.fill("#station-url", "http://127.0.0.1:9/dai-tinh.mp3")
    with admin.expect_navigation():  # the page reloads with what was saved
        admin.click("#station-form button[type=submit]")
    expect(admin.locator("#stations tr[data-station]")).to_contain_text("Chưa tiếp sóng lần nào")
    admin.fill("#station-url", "file:///etc/passwd")
    admin.fill("#station-name", "Không hợp lệ")
    admin.click("#station-form button[type=submit]")
    expect(admin.locator("#station-form [data-error]")).to_contain_text("http://")

    staff = new_page()
    login(staff, live_server, "staff", "/relay")
    expect(staff.locator("#station-form")).to_have_count(0)  # admins register stations
    expect(staff.locator("#relay-now")).to_have_count(0)  # leaders relay at once
    form = staff.locator("form[data-relay]")
    tomorrow = (datetime.now(zone()) + timedelta(days=1)).date().isoformat()
    form.locator("[name=title]").fill("Thời sự sáng")
    form.locator("[name=date]").fill(tomorrow)
    form.locator("[name=time]").fill("05:00")
    form.locator("[name=priority]").select_option("ordinary")
    form.locator("button[type=submit]").click()
    expect(form.locator("[data-error]")).to_contain_text("giờ yên tĩnh")
    form.locator("[name=kind]").select_option("daily")
    form.locator("[name=time]").fill("06:30")
    staff.click("form[data-relay] [data-add-time]")
    form.locator("[data-time-row] input").nth(1).fill("18:00")
    form.locator("input[name=target][value=zones]").check()
    form.locator("input[name=zones]").first.check()
    form.locator("[name=minutes]").fill("45")
    with staff.expect_navigation():
        form.locator("button[type=submit]").click()
    row = staff.locator("#slot-list tr[data-slot]").first
    expect(row).to_contain_text("Thời sự sáng")
    expect(row).to_contain_text("Hằng ngày lúc 06:30, 18:00")
    expect(row).to_contain_text("Chờ duyệt")
    expect(row).to_contain_text("45 phút")
    expect(row).to_contain_text("Chưa phát")
    expect(row.locator("[data-relay-action=approve-slot]")).to_have_count(0)

    leader = new_page(viewport=PHONE)
    login(leader, live_server, "leader", "/relay")
    row = leader.locator("#slot-list tr[data-slot]").first
    with leader.expect_navigation():
        row.locator("[data-relay-action=approve-slot]").click()
    expect(leader.locator("#slot-list tr[data-slot]").first).to_contain_text("Đã duyệt")
    width = leader.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the relay page is {width} px wide on a phone"
    expect(leader.locator("#relay-now")).to_be_visible()
    screenshot(leader, "relay-phone")
