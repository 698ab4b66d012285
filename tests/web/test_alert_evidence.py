"""The alert desk's evidence and care steps in chromium: tap a snapshot to see it full size
and download it with time, place and camera written on it (in Vietnamese); a false alarm
asks for confirmation and a reason; empty filters are fine; new alerts ring and notify, and
so does a node that stays offline, on the officer's and admin's pages."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.conftest import wait_for
from tests.web.conftest import DESKTOP, PHONE, login, screenshot
from tests.web.test_alert_desk import NodeLink, card

RECORD_NOTIFICATIONS = """
window.__notes = [];
const Real = window.Notification;
class Recorded extends Real {
  constructor(title, options) { super(title, options); window.__notes.push([title, options.body]); }
}
Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
Recorded.requestPermission = (...a) => Real.requestPermission(...a);
window.Notification = Recorded;
"""
"""Wraps the real Notification (permission granted by the browser context) so the test
can read what the page showed."""


@pytest.fixture
def controller_settings(controller_settings):  # type: ignore[no-untyped-def]
    controller_settings.offline_alert_min = 0.02  # 1.2 s: the test need not wait minutes
    return controller_settings


def name_cameras(server, broker, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """node-3's config gains a named camera; the controller reads it as it reads the fleet."""
    import yaml

    from controller.services import fleet

    doc = yaml.safe_load(broker.node_configs["node-3"].read_text(encoding="utf-8"))
    doc["cameras"] = [{"id": "cong-truong", "name": "Cổng trường THCS", "source": 0}]
    folder = tmp_path / "fleet"
    folder.mkdir()
    (folder / "node-3.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True),
                                        encoding="utf-8")
    with server.runtime.db.session() as s:
        assert fleet.register_fleet(s, folder) == 1


def alert_on_desk(broker, page, node: str, camera: str, kind: str, seed: int):  # type: ignore[no-untyped-def]
    """A node publishes an alert over MQTT; it is on the open desk."""
    link = NodeLink(broker, node)
    try:
        alert = link.alert(camera, kind, seed=seed)
        card(page, alert.id).wait_for(timeout=5000)
    finally:
        link.close()
    return alert


def watched(new_page, size, server, role: str, path: str):  # type: ignore[no-untyped-def]
    page = new_page(size, permissions=["notifications"])
    page.add_init_script(RECORD_NOTIFICATIONS)
    login(page, server, role, path)
    return page


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_officer_views_downloads_evidence_and_confirms_a_false_alarm(live_server, broker,
                                                                    new_page, size, tmp_path):
    page = watched(new_page, size, live_server, "officer", "/alerts")
    page.wait_for_selector("#live[data-connected='1']")
    assert "Chuông và thông báo đang bật" in page.inner_text("#notify-state")
    name_cameras(live_server, broker, tmp_path)
    alert = alert_on_desk(broker, page, "node-3", "cong-truong", "no_helmet", seed=3)
    the_card = card(page, alert.id)
    assert the_card.locator("[data-f=kind]").inner_text() == "Không đội mũ bảo hiểm"
    assert the_card.locator("[data-f=zones]").inner_text() == "Thôn 2"
    assert the_card.locator("[data-f=camera]").inner_text() == "Cổng trường THCS"
    # it rang and notified, in Vietnamese, by name
    wait_for(lambda: page.evaluate("window.__notes.length") >= 1, 5, what="a notification")
    assert page.evaluate("window.__notes[0]") == ["Cảnh báo camera mới",
                                                  "Không đội mũ bảo hiểm · Thôn 2 – Cổng trường"]
    assert int(page.get_attribute("body", "data-rang") or 0) >= 1

    # tap: full size with the caption band; download it as evidence
    the_card.locator("img[data-f=img]").click()
    page.wait_for_selector("#viewer[open]")
    wait_for(lambda: page.evaluate("document.getElementById('viewer-img').naturalHeight") > 360,
             5, what="the evidence picture")
    with page.expect_download() as download:
        page.click("#viewer-download")
    saved = tmp_path / "evidence.jpg"
    download.value.save_as(saved)
    assert download.value.suggested_filename.startswith("bang-chung-canh-bao-")
    picture = Image.open(saved)
    assert picture.width == 640 and picture.height > 360 + 40
    band = np.asarray(picture.convert("L"))[365:, :]
    assert (band > 180).sum() > 1500, "the caption band has words written on it"
    screenshot(page, f"alert-evidence-{'phone' if size is PHONE else 'desktop'}",
               full_page=False)
    page.click("#viewer-close")

    # a false alarm: a confirmation step that wants a reason
    assert the_card.locator("[data-f=confirm-false]").is_hidden()
    assert page.locator("#notify-on").is_hidden()
    the_card.locator("button[data-action=false-alarm]").click()
    assert the_card.locator("[data-f=confirm-false]").is_visible()
    assert the_card.get_attribute("data-state") == "new"
    the_card.locator("button[data-confirm=false-alarm]").click()
    page.wait_for_selector("#toast.bad:has-text('lý do')")
    assert the_card.get_attribute("data-state") == "new"
    the_card.locator("input[name=reason]").fill("Người dắt xe, không đi xe")
    the_card.locator("button[data-confirm=false-alarm]").click()
    wait_for(lambda: the_card.get_attribute("data-state") == "false_alarm", 5,
             what="the false alarm")
    assert "Lê Văn An Ninh – báo động giả: Người dắt xe, không đi xe" in \
        the_card.locator("[data-f=note]").inner_text()
    from controller.services import alerts

    with live_server.runtime.db.session() as s:
        [event] = alerts.history(s, alert.id)
        assert (event.action, event.detail["note"]) == ("alert_false_alarm",
                                                        "Người dắt xe, không đi xe")

    # filters with empty fields, or a day that is not one: a page, never JSON
    page.goto(live_server.url("/alerts?zone=&camera=&kind=&state=&day="))
    assert page.locator("#alerts .alert").count() == 1
    page.goto(live_server.url("/alerts?day=hom-nay&state=khong-co"))
    assert "bộ lọc ngày được bỏ qua" in page.inner_text("main")
    assert page.locator("#alerts .alert").count() == 1
    assert "Thôn 2" in page.inner_text("select[name=zone]")
    assert "Cổng trường THCS · Thôn 2 – Cổng trường" in page.inner_text("select[name=camera]")
    page.select_option("select[name=camera]", label="Cổng trường THCS · Thôn 2 – Cổng trường")
    page.wait_for_selector("select[name=camera] option[value='node-3/cong-truong'][selected]",
                           state="attached")
    assert page.locator("#alerts .alert").count() == 1


def test_the_api_wants_a_reason_for_a_false_alarm(live_server, broker, new_page):
    page = new_page()
    login(page, live_server, "officer", "/alerts")
    alert = alert_on_desk(broker, page, "node-1", "nha-van-hoa", "motion", seed=4)
    answer = page.evaluate("""async (id) => {
        const r = await fetch(`/api/alerts/${id}/false-alarm`, {method: 'POST', headers: {
          'Content-Type': 'application/json',
          'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content},
          body: JSON.stringify({note: '  '})});
        return [r.status, (await r.json()).message]; }""", alert.id)
    assert answer == [422, "Hãy ghi ngắn gọn lý do đây là báo động giả."]


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_admin_pages_ring_for_a_new_alert_and_a_node_that_stays_offline(
        live_server, broker, start_node, new_page, size):
    agent = start_node("node-2")
    wait_for(lambda: any(n.online for n in _nodes(live_server) if n.node_id == "node-2"), 10,
             what="node-2 online")
    page = watched(new_page, size, live_server, "admin", "/dashboard")
    page.wait_for_function("document.body.dataset.watchAlerts === '1'")
    hub = live_server.runtime.alerts
    wait_for(lambda: hub.subscribers >= 1, 5, what="the dashboard's alert stream")
    link = NodeLink(broker, "node-1")
    try:
        link.alert("cho", "dumping", seed=5)
        wait_for(lambda: page.evaluate("window.__notes.length") >= 1, 5, what="a notification")
    finally:
        link.close()
    assert page.evaluate("window.__notes[0]") == ["Cảnh báo camera mới",
                                                  "Đổ rác · Thôn 1 – Nhà văn hoá"]
    agent.stop(graceful=False)
    wait_for(lambda: any(t == "Cụm loa mất kết nối" for t, _ in page.evaluate("window.__notes")),
             15, what="the offline notification")
    bodies = [b for t, b in page.evaluate("window.__notes") if t == "Cụm loa mất kết nối"]
    assert bodies == ["Thôn 1 – Ngã ba chợ mất kết nối hơn 0,02 phút."]


def _nodes(server):  # type: ignore[no-untyped-def]
    from controller.services import fleet

    with server.runtime.db.session() as s:
        return fleet.list_nodes(s)
