"""One deployment, two communes, real nodes in each (issue 13 item 1).

The fleet here is two communes of two nodes each, with the same zone codes in both (thôn
1 exists in every commune). What must hold on the wire, not only in the database:

- a province leader's emergency for both communes starts on all four nodes at once;
- a commune leader's emergency for "everyone" reaches every node of that commune and no
  node of the other, and a zone of the same code in the other commune hears nothing;
- a commune's staff schedule for its thôn 1 lands in its nodes' plans only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from firmware_config.broker import free_port
from firmware_config.fleet_gen import write_synthetic_templates
from firmware_config.provision import FleetSettings, ProvisionedFleet, provision
from tests.conftest import login, wait_for

A, B = "xa-sim-01", "xa-sim-02"
NODES = {A: ("sim-0001", "sim-0002"), B: ("sim-0003", "sim-0004")}


@pytest.fixture
def fleet(fleet_dir: Path) -> ProvisionedFleet:
    """Four nodes over two communes, one node per zone, the zones renamed so that both
    communes have a thôn 1 and a thôn 2."""
    templates = write_synthetic_templates(fleet_dir.parent / "templates", 4, per_zone=1,
                                          communes=2)
    for i, path in enumerate(sorted(templates.glob("*.yaml"))):
        path.write_text(path.read_text().replace(f"zone-{i + 1:03d}", f"thon-{i % 2 + 1}"))
    return provision(templates, fleet_dir, settings=FleetSettings(free_port(),
                                                                 controller_replicas=2))


def account(controller, name: str, role: str, commune: str | None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    password = f"{name}-password-123"
    r = controller.post("/api/users", json={"username": name, "password": password,
                                            "role": role, "commune": commune})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {login(controller, name, password)}"}


def started(controller, item: str) -> set[str]:  # type: ignore[no-untyped-def]
    log = controller.get("/api/log", params={"item": item}).json()
    return {e["node_id"] for e in log if e["event"] == "started"}


def test_province_and_commune_emergencies_reach_exactly_their_communes(controller,
                                                                        start_node) -> None:
    agents = {n: start_node(n) for nodes in NODES.values() for n in nodes}
    wait_for(lambda: sum(n["online"] for n in controller.get("/api/nodes").json()) == 4, 15,
             what="four nodes online")
    province = account(controller, "lanhdao-tinh", "leader", None)
    leader_a = account(controller, "lanhdao-a", "leader", A)

    r = controller.post("/api/emergency", headers=province, json={
        "text": "Khẩn cấp: bão số ba.", "targets": {"all": True, "communes": [A, B]}})
    assert r.status_code == 201, r.text
    everywhere = r.json()["item_id"]
    wait_for(lambda: started(controller, everywhere) == set(agents), 30,
             what="the province's emergency on all four nodes")
    assert controller.post("/api/emergency/stop", headers=province, json={}).status_code == 200

    r = controller.post("/api/emergency", headers=leader_a, json={
        "text": "Khẩn cấp: lũ quét ở xã A.", "targets": {"all": True}})
    assert r.status_code == 201, r.text
    only_a = r.json()["item_id"]
    wait_for(lambda: started(controller, only_a) == set(NODES[A]), 30,
             what="commune A's emergency on A's nodes")
    r = controller.post("/api/emergency", headers=leader_a, json={
        "text": "Khẩn cấp.", "targets": {"all": True, "communes": [B]}})
    assert r.status_code == 403 and r.json()["code"] == "other_commune", r.text
    assert started(controller, only_a) == set(NODES[A])  # B's nodes heard nothing
    assert controller.post("/api/emergency/stop", headers=leader_a, json={}).status_code == 200


def test_a_communes_schedule_for_its_thon_1_reaches_only_its_thon_1(controller,
                                                                    start_node) -> None:
    agents = {n: start_node(n) for nodes in NODES.values() for n in nodes}
    staff_b = account(controller, "bientap-b", "staff", B)
    leader_b = account(controller, "lanhdao-b", "leader", B)
    r = controller.post("/api/announcements", headers=staff_b, json={
        "text": "Thông báo họp thôn một.", "engine": "espeak-ng"})
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    at = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    r = controller.post("/api/schedules", headers=staff_b, json={
        "announcement_id": aid, "targets": {"zones": ["thon-1"]},
        "timing": {"kind": "once", "start_at": at}})
    assert r.status_code == 201, r.text
    assert r.json()["targets"]["communes"] == [B]
    schedule = r.json()["id"]
    assert controller.post(f"/api/announcements/{aid}/submit", headers=staff_b,
                           json={}).status_code == 200
    assert controller.post(f"/api/announcements/{aid}/approve", headers=leader_b,
                           json={}).status_code == 200

    def holds(node: str) -> bool:
        plan = agents[node].plans.current
        return bool(plan and any(i.id.startswith(f"s{schedule}-") for i in plan.items))

    thon_1_of_b = "sim-0003"  # the first of B's two nodes is its thôn 1
    wait_for(lambda: holds(thon_1_of_b), 20, what="B's thôn 1 holding the schedule")
    assert not any(holds(n) for n in agents if n != thon_1_of_b), \
        "A's thôn 1 (same code) and B's thôn 2 must not get it"
