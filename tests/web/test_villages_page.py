"""Staff keep the station's calendar from one page: a village's name and quiet hours (the
nodes' plans follow), a group of nodes, a holiday, how a word is read; on a phone too."""

from __future__ import annotations

from datetime import time

from tests.conftest import wait_for
from tests.web.conftest import PHONE, login, screenshot


def quiet_of(agent):  # type: ignore[no-untyped-def]
    plan = agent.store.load_plan()
    return plan.quiet_hours if plan else None


def test_staff_edit_villages_groups_holidays_and_words(live_server, start_node, new_page):
    agent = start_node("node-1")
    zone = agent.config.zones[0]
    wait_for(lambda: agent.store.load_plan() is not None, 15, what="node-1's first plan")
    page = new_page()
    login(page, live_server, "staff", "/villages")
    form = page.locator(f"form.zone-form[data-zone='{zone}']")
    form.locator("input[name=name]").fill("Thôn Đông")
    form.locator("input[name=quiet_start]").fill("21:30")
    form.locator("input[name=quiet_end]").fill("05:45")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#toast:not([hidden])")
    assert page.inner_text("#toast") == "Đã lưu Thôn Đông."
    wait_for(lambda: (q := quiet_of(agent)) is not None
             and (q.start, q.end) == (time(21, 30), time(5, 45)), 15,
             what="node-1's plan to carry the new quiet hours")
    page.wait_for_load_state("load")
    page.wait_for_selector(f"form.zone-form[data-zone='{zone}'] input[value='Thôn Đông']")

    # a group: a name that is not a slug is refused on the page, in Vietnamese
    page.fill("#group-name", "Gần chợ")
    page.click("#group-form button[type=submit]")
    assert "chữ thường không dấu" in page.inner_text("#group-form [data-error]")
    page.fill("#group-name", "gan-cho")
    page.locator("#group-form input[name=node][value='node-1']").check()
    page.click("#group-form button[type=submit]")
    page.wait_for_selector("#group-list [data-group='gan-cho']")

    page.fill("#holiday-form input[name=day]", "2030-02-03")
    page.fill("#holiday-form input[name=name]", "Tết Nguyên đán")
    page.click("#holiday-form button[type=submit]")
    page.wait_for_selector("#holiday-list li:has-text('03/02/2030 · Tết Nguyên đán')")

    page.fill("#word-form input[name=term]", "HTX")
    page.fill("#word-form input[name=reading]", "hợp tác xã")
    page.click("#word-form button[type=submit]")
    page.wait_for_selector("#word-list [data-word='HTX']")
    assert "HTX → hợp tác xã" in page.inner_text("#word-list")
    screenshot(page, "villages")

    page.on("dialog", lambda d: d.accept())
    page.click("[data-delete-word='HTX']")
    page.wait_for_selector("#word-list [data-word='HTX']", state="detached")
    page.click("#holiday-list [data-delete-holiday]")
    page.wait_for_selector("#holiday-list li.muted")


def test_the_villages_page_fits_a_phone(live_server, new_page):
    phone = new_page(PHONE)
    login(phone, live_server, "staff", "/villages")
    assert "Thôn/khu & lịch" in phone.inner_text("header nav")
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide on a {PHONE['width']} px phone"
