"""Staff and leaders in a browser, at desktop and phone sizes: careless input on the
compose page (too long, no words, a refused recording, pressing save twice, the toast),
the text as it will be read; editing, sending back with a reason the author then sees,
the waiting badge, deleting; several times of day in one schedule; a node's plan."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from controller.localtime import zone
from tests.conftest import login as api_login
from tests.web.conftest import DESKTOP, PHONE, login, screenshot

SIZES = pytest.mark.parametrize("size", ["desktop", "phone"])
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}


@contextmanager
def api(server, role: str) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        token = api_login(client, role, server.passwords[role])
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def fits(page: Any, size: str) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= VIEWPORTS[size]["width"], f"the page is {width} px wide"


def overlaps(page: Any, selector: str) -> list[str]:
    """The controls in <main> that the element covers (by their boxes), and the element
    itself when it reaches below the (sticky) header: what it covers there is a field."""
    return page.evaluate("""(sel) => {
      const t = document.querySelector(sel).getBoundingClientRect();
      const header = document.querySelector("header.top").getBoundingClientRect();
      if (t.bottom <= header.bottom && header.top <= 0.5) return [];
      const hit = [`${sel} ${t.top}-${t.bottom} below the header ${header.top}-${header.bottom}`];
      for (const el of document.querySelectorAll(
          "main input, main textarea, main select, main button")) {
        const r = el.getBoundingClientRect();
        if (!r.width || !r.height) continue;
        if (r.left < t.right && t.left < r.right && r.top < t.bottom && t.top < r.bottom)
          hit.push(el.id || el.name || el.textContent.trim());
      }
      return hit;
    }""", selector)


@SIZES
def test_careless_input_on_the_compose_page(live_server, new_page, size):
    page = new_page(VIEWPORTS[size])
    login(page, live_server, "staff", "/compose")
    page.select_option("#engine", "espeak-ng")

    # too long: not cut, counted and refused visibly; nothing is previewed
    page.fill("#text", "Bà con chú ý. " * 400)  # 5,600 characters
    assert page.input_value("#text").__len__() == 5600, "the box must not cut the text"
    assert "quá 600 ký tự" in page.inner_text("#text-count")
    assert "over" in (page.get_attribute("#text-count", "class") or "")
    page.click("#preview")
    assert "quá giới hạn 5.000" in page.inner_text("#compose-error")
    assert page.get_attribute("#player", "data-ready") is None

    # no words: no preview of chimes and silence
    page.fill("#text", "... !!! ---")
    page.click("#preview")
    page.wait_for_selector("#compose-error:has-text('không có chữ nào để đọc')")
    assert page.get_attribute("#player", "data-ready") is None

    # a refused recording: said, cleared from the box, and not silently dropped at save
    page.set_input_files("#recording", files=[{"name": "bai-hat.mp3", "mimeType": "audio/mpeg",
                                               "buffer": b"this is not audio at all" * 50}])
    page.wait_for_selector("#upload-info.error")
    assert "Không nhận tệp «bai-hat.mp3»" in page.inner_text("#upload-info")
    assert page.evaluate("() => document.getElementById('recording').files.length") == 0

    # the reading beside the preview
    page.fill("#title", "Họp thôn")
    page.fill("#text", "UBND xã họp lúc 7h30 tại nhà văn hoá.")
    page.click("#preview")
    page.wait_for_selector("#player[data-ready='1']", timeout=60_000)
    assert page.inner_text("#reading") == \
        "ủy ban nhân dân xã họp lúc bảy giờ ba mươi phút tại nhà văn hoá."
    screenshot(page, f"compose-reading-{size}")

    page.click("#save")
    page.wait_for_selector("#compose-error:has-text('đã bị từ chối nên chưa được đính kèm')")
    with api(live_server, "staff") as client:
        assert client.get("/api/announcements").json() == [], "nothing saved on the first press"
        page.click("#save")  # a second press: saved, without the recording
        page.wait_for_selector("#saved:not([hidden])", timeout=60_000)
        aid = int(page.get_attribute("#saved-link", "data-id"))
        assert page.get_attribute("#edit-link", "href") == f"/announcements/{aid}"
        assert page.is_disabled("#save") and page.inner_text("#save") == "Đã lưu"
        page.click("#save", force=True)
        page.wait_for_timeout(500)
        assert [a["id"] for a in client.get("/api/announcements").json()] == [aid]
    page.wait_for_selector("#toast:not([hidden])")
    assert overlaps(page, "#toast") == [], "the toast covers a field or a button"
    fits(page, size)


@SIZES
def test_edit_send_back_with_a_reason_badge_and_delete(live_server, new_page, size):
    with api(live_server, "staff") as staff_api:
        r = staff_api.post("/api/announcements", json={
            "title": "Lịch tiêm phòng", "text": "Tiêm phòng cho trẻ ngày 5/3.",
            "engine": "espeak-ng"})
        assert r.status_code == 201, r.text
        aid = r.json()["id"]
        assert staff_api.post(f"/api/announcements/{aid}/submit", json={}).status_code == 200

    leader = new_page(VIEWPORTS[size])
    login(leader, live_server, "leader", "/schedules")
    badge = "#menu-toggle .badge.count" if size == "phone" else "#waiting-badge"
    assert leader.inner_text(badge) == "1"
    card = leader.locator(f"#pending [data-announcement='{aid}']")
    assert card.locator("[data-reading]").inner_text() == \
        "Tiêm phòng cho trẻ ngày năm tháng ba."
    card.locator("button[data-action=reject]").click()  # no reason: refused on the page
    leader.wait_for_selector("#toast.bad:has-text('Hãy ghi lý do trả lại')")
    card.locator("[data-note]").fill("Ghi rõ địa điểm tiêm.")
    card.locator("button[data-action=reject]").click()
    leader.wait_for_selector("#pending", state="detached")
    assert leader.locator(badge).count() == 0

    # the author sees the reason on the dashboard and on the announcement's page
    staff = new_page(VIEWPORTS[size])
    login(staff, live_server, "staff")
    assert "Ghi rõ địa điểm tiêm." in staff.inner_text(f"#returned [data-announcement='{aid}']")
    staff.goto(live_server.url("/schedules"))
    assert "Ghi rõ địa điểm tiêm." in staff.inner_text(
        f"tr[data-announcement='{aid}'] [data-returned]")
    staff.go_back()
    staff.click(f"#returned a[href='/announcements/{aid}']")
    staff.wait_for_selector("#review-note")
    assert "Ghi rõ địa điểm tiêm." in staff.inner_text("#review-note")
    assert "Trần Văn Lãnh Đạo" in staff.inner_text("#review-note")
    assert "Trả lại" in staff.inner_text("#history")
    staff.fill("#text", "Tiêm phòng cho trẻ ngày 5/3 tại trạm y tế xã.")
    staff.click("#show-reading")
    staff.wait_for_selector("#reading:has-text('ngày năm tháng ba tại trạm y tế xã')")
    staff.click("#save-edit")
    staff.wait_for_selector("#toast:not([hidden])")
    assert overlaps(staff, "#toast") == []
    staff.wait_for_load_state("load")
    staff.wait_for_selector("#history li:has-text('Sửa')")
    staff.click("#actions button[data-action=submit]")
    staff.wait_for_selector("#status.submitted", timeout=10_000)
    assert staff.locator("#review-note").count() == 0, "sent again: the old reason is gone"
    screenshot(staff, f"announcement-{size}")

    # the leader approves from the item's page; a staffer's edit sends it back for approval
    leader.goto(live_server.url(f"/announcements/{aid}"))
    leader.click("#actions button[data-action=approve]")
    leader.wait_for_selector("#status.approved")
    assert leader.locator(badge).count() == 0
    staff.reload()
    assert "gửi bản tin lại cho lãnh đạo duyệt" in staff.inner_text("#edit-rule")
    assert staff.locator("#delete").count() == 0, "approved: no longer the author's to delete"
    assert "lãnh đạo xoá" in staff.inner_text("#no-delete")
    staff.fill("#text", "Tiêm phòng cho trẻ ngày 6/3 tại trạm y tế xã.")
    staff.click("#save-edit")
    staff.wait_for_selector("#status.submitted")
    leader.reload()
    assert leader.inner_text(badge) == "1"
    fits(staff, size)

    # a leader deletes it (it never aired); it is gone
    leader.on("dialog", lambda d: d.accept())
    leader.click("#delete")
    leader.wait_for_url("**/schedules")
    with api(live_server, "leader") as leader_api:
        assert leader_api.get(f"/api/announcements/{aid}").status_code == 404


@SIZES
def test_several_times_in_one_form_and_the_node_plan(live_server, new_page, size):
    with api(live_server, "leader") as leader_api:
        r = leader_api.post("/api/announcements", json={
            "title": "Thể dục buổi sáng", "text": "Mời bà con tập thể dục.",
            "engine": "espeak-ng"})
        aid = r.json()["id"]
        for step in ("submit", "approve"):
            assert leader_api.post(f"/api/announcements/{aid}/{step}", json={}
                                   ).status_code == 200
    page = new_page(VIEWPORTS[size])
    login(page, live_server, "staff", "/schedules")
    form = page.locator("form[data-schedule-form]")
    form.locator("[name=announcement_id]").select_option(str(aid))
    form.locator("[name=kind]").select_option("daily")
    tomorrow = (datetime.now(UTC).astimezone(zone()) + timedelta(days=1)).date()
    form.locator("[name=date]").fill(tomorrow.isoformat())
    form.locator("[name=time]").fill("06:00")
    form.locator("[data-add-time]").click()
    form.locator("[name=time]").nth(1).fill("17:00")
    removers = form.locator("[data-remove-time]")
    assert [removers.nth(i).is_visible() for i in range(2)] == [False, True]
    form.locator("input[name=target][value=nodes]").check()
    form.locator("input[name=nodes][value=node-1]").check()
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#schedule-list:has-text('Hằng ngày lúc 06:00, 17:00')")
    with api(live_server, "staff") as staff_api:
        [schedule] = staff_api.get("/api/schedules").json()
    assert schedule["announcement_id"] == aid  # one schedule, not two
    slots = page.locator(f"#week .day[data-day='{tomorrow.isoformat()}'] .slot")
    if slots.count():  # tomorrow may be in next week's view
        assert [s.split()[0] for s in slots.all_inner_texts()] == ["06:00", "17:00"]
    fits(page, size)

    with api(live_server, "staff") as staff_api:  # a draft on node-1: not in its plan yet
        r = staff_api.post("/api/announcements", json={
            "title": "Họp chi bộ", "text": "Mời đảng viên dự họp.", "engine": "espeak-ng"})
        r = staff_api.post("/api/schedules", json={
            "announcement_id": r.json()["id"], "targets": {"nodes": ["node-1"]},
            "timing": {"kind": "once", "start_at": f"{tomorrow.isoformat()}T09:00:00+07:00"}})
        assert r.status_code == 201, r.text
    page.goto(live_server.url("/nodes"))
    page.click("tr[data-node=node-1] a[data-plan-link]")
    page.wait_for_url("**/nodes/node-1/plan")
    rows = page.locator("#plan tr[data-plan-item]")
    texts = rows.all_inner_texts()
    assert 2 <= len(texts) <= 4, texts  # 48 h from now, starting tomorrow
    assert all("Thể dục buổi sáng" in t and "Ưu tiên" in t for t in texts)
    times = [t.split(maxsplit=1)[0].split("\t")[0] for t in texts]
    assert set(times) <= {"06:00", "17:00"} and "06:00" in times
    assert "48 giờ" in page.inner_text("h1")
    assert page.locator("#waiting [data-waiting-item]").all_inner_texts() == [
        f"09:00 {tomorrow:%d/%m/%Y} · Họp chi bộ Nháp"]
    screenshot(page, f"node-plan-{size}")
    fits(page, size)
