"""The nodes page runs remote operations and shows each node's reply in Vietnamese: a
node that answers, one that does not (after the timeout), a config that rolls back, and
only the buttons the role may use; no ids, hosts or error text on the page."""

from __future__ import annotations

import re

import yaml

from firmware_config.broker import free_port
from tests.conftest import wait_for
from tests.web.conftest import login, screenshot

TECHNICAL = re.compile(r"127\.0\.0\.1|localhost|node-\d|Traceback|Error|[0-9a-f]{32}|"
                       r"/tmp/|\bok=|rolled_back|no_answer")


def result_rows(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    rows = page.locator("#operation-result [data-op-rows] tr")
    return {rows.nth(i).locator("td").nth(0).inner_text():
            rows.nth(i).locator("td").nth(1).inner_text() for i in range(rows.count())}


def test_operations_from_the_nodes_page_show_each_reply_in_vietnamese(
        live_server, start_node, new_page, broker):
    from edge.agent import EdgeAgent
    from firmware_config.schema import load_node_config

    path = broker.node_configs["node-1"]
    agent = EdgeAgent(load_node_config(path), config_path=path)  # node-1 from its file
    agent.start()
    try:
        assert agent.connected.wait(10)
        start_node("node-2")  # node-3 stays off: it will not answer
        live_server.runtime.operations.reply_timeout_s = 3.0
        wait_for(lambda: live_server.runtime.link.connected.is_set(), 5)

        admin = new_page()
        login(admin, live_server, "admin")
        admin.goto(live_server.url("/nodes"))
        admin.click("#fleet-ops button[data-op=versions]")
        panel = admin.locator("#operation-result")
        panel.locator("[data-op-summary]", has_text="không trả lời.").wait_for(timeout=20_000)
        rows = result_rows(admin)
        assert rows["Thôn 2 – Cổng trường"] == "Không trả lời"
        assert rows["Thôn 1 – Nhà văn hoá"].startswith("Phần mềm ")
        assert rows["Thôn 1 – Ngã ba chợ"].startswith("Phần mềm ")
        assert "2/3 cụm loa đã trả lời, 1 không trả lời." in panel.inner_text()
        assert not TECHNICAL.search(panel.inner_text()), panel.inner_text()
        screenshot(admin, "node-operations")

        # a config pointing at a wrong broker port: tried, then rolled back
        doc = yaml.safe_load(path.read_text())
        doc["mqtt"]["port"] = free_port()
        row = admin.locator("tr[data-node=node-1]")
        row.locator("details[data-config] summary").click()
        row.locator("[data-config-input]").fill(yaml.safe_dump(doc, allow_unicode=True))
        row.locator("[data-trial-input]").fill("3")
        admin.once("dialog", lambda dialog: dialog.accept())
        row.locator("button[data-op=config]").click()
        row.locator("[data-result]", has_text="quay lại cấu hình cũ").wait_for(timeout=30_000)
        assert result_rows(admin) == {
            "Thôn 1 – Nhà văn hoá": "Cấu hình mới không kết nối được; cụm loa đã quay lại "
                                    "cấu hình cũ"}
        assert not TECHNICAL.search(panel.inner_text())

        # a config the controller refuses: a Vietnamese message, nothing sent
        row.locator("[data-config-input]").fill("node_id: [")
        admin.once("dialog", lambda dialog: dialog.accept())
        row.locator("button[data-op=config]").click()
        toast = admin.locator("#toast")
        toast.wait_for()
        assert toast.inner_text() == "Cấu hình không đọc được (không phải YAML)."
    finally:
        agent.stop()


def test_each_role_sees_only_the_operations_it_may_run(live_server, new_page):
    seen = {}
    for role in ("staff", "leader", "admin"):
        page = new_page()
        login(page, live_server, role)
        page.goto(live_server.url("/nodes"))
        row = page.locator("tr[data-node=node-1]")
        seen[role] = {b.get_attribute("data-op") for b in row.locator("button[data-op]").all()}
    assert seen["staff"] == {"test_tone", "volume", "versions"}
    assert seen["leader"] == {"test_tone", "volume", "versions", "restart"}
    assert seen["admin"] == {"test_tone", "volume", "versions", "restart", "config"}
