"""A regional broker bridged to the province broker: two real Mosquitto processes, both
from the project's own files (TLS, dynamic-security accounts, the bridge section generated
from the contract), the real controller on the province side, real agents on the regional
side.

The example commune ``xa-demo`` is put in region ``huyen-a`` before the fleet is
provisioned, so its nodes' configs point at the regional broker; the controller knows
nothing of it. What the controller sends must reach the nodes, what they report must come
back, and stopping either broker in the middle must lose nothing and double nothing.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import mqtt_contract as contract
from firmware_config.bridge import (
    Direction,
    RegionSettings,
    bridge_acl,
    bridge_topics,
    declare_region,
    load_regions,
)
from firmware_config.broker import AclType, BrokerProcess, TlsFiles, free_port, running_broker
from firmware_config.provision import FleetSettings, ProvisionedFleet, provision, read_secret
from tests.conftest import EXAMPLES, wait_for

pytestmark = pytest.mark.slow
COMMUNE = "xa-demo"


@pytest.fixture
def fleet(fleet_dir: Path) -> ProvisionedFleet:
    """The example fleet (overrides conftest's), its commune served by a regional broker."""
    declare_region(fleet_dir, RegionSettings("huyen-a", [COMMUNE], free_port()))
    return provision(EXAMPLES, fleet_dir, settings=FleetSettings(free_port(),
                                                                 controller_replicas=2))


@pytest.fixture
def region(fleet: ProvisionedFleet) -> RegionSettings:
    (only,) = load_regions(fleet.root)
    return only


@pytest.fixture
def regional(fleet: ProvisionedFleet, region: RegionSettings, broker: ProvisionedFleet,
             tmp_path: Path) -> Iterator[BrokerProcess]:
    """The regional broker, started after the province one (its bridge connects out)."""
    with running_broker(region.files(fleet.root).conf, region.port,
                        tmp_path / "regional.log") as process:
        yield process


@pytest.fixture
def start_node(regional: BrokerProcess, start_node):  # type: ignore[no-untyped-def]
    """conftest's agents; their configs name the regional broker, which runs first."""
    return start_node


# what provisioning generates --------------------------------------------------------------

def test_every_contract_topic_is_bridged_its_way_at_its_qos(fleet, region) -> None:
    topics = {t.pattern: t for t in bridge_topics(region.communes)}
    assert len(topics) == len(contract.TOPICS)
    for spec in contract.TOPICS:
        t = topics[spec.filter(COMMUNE)]
        assert t.qos == spec.qos
        assert t.direction == (Direction.inbound if spec.sender == contract.Account.controller
                               else Direction.outbound)
    conf = region.files(fleet.root).conf
    assert conf.stat().st_mode & 0o077 == 0  # it holds the bridge's password
    text = conf.read_text()
    assert "bridge_protocol_version mqttv50" in text and "bridge_insecure false" in text
    assert all(t.line() in text for t in topics.values())
    node_cfg = fleet.node_configs["node-1"].read_text()
    assert f"port: {region.port}" in node_cfg
    # the bridge's role on the province broker names its commune only
    assert all(COMMUNE in e.topic or e.kind == AclType.unsubscribe_pattern
               for e in bridge_acl(region.communes))


def test_the_bridge_account_reaches_only_its_communes_topics(fleet, region, broker) -> None:
    """Its credentials (taken from a stolen regional broker) on the province broker: it may
    take its communes' plans, not another commune's, and may not speak as the controller."""
    user = region.username
    password = read_secret(fleet.root / "secrets" / f"{user}.pass")
    tls = region.files(fleet.root)

    stolen = fleet.mqtt_client(user, password, user, TlsFiles(
        tls.ca, tls.directory / "bridge.crt", tls.directory / "bridge.key"))
    granted: list[list[int]] = []
    done = threading.Event()

    def on_subscribe(_c, _u, _mid, codes, _p) -> None:  # type: ignore[no-untyped-def]
        granted.append([c.value for c in codes])
        done.set()

    stolen.on_subscribe = on_subscribe
    stolen.connect("127.0.0.1", fleet.broker_port)
    stolen.loop_start()
    try:
        for topic in (contract.PLAN.filter(COMMUNE), contract.PLAN.filter("xa-khac"),
                      contract.PLAN.filter()):
            done.clear()
            stolen.subscribe(topic, 1)
            assert done.wait(10)
        assert granted[0] == [1] and granted[1][0] >= 0x80 and granted[2][0] >= 0x80
        watcher = Watcher(fleet, [contract.PLAN.filter()])  # as the controller would see
        stolen.publish(contract.PLAN.topic(COMMUNE, node="node-1"), b"{}", 1).wait_for_publish(5)
        stolen.publish(contract.PLAYBACK.topic("xa-khac", node="x"), b"{}", 1).wait_for_publish(5)
        time.sleep(1.0)
        assert watcher.received == []
        watcher.close()
    finally:
        stolen.loop_stop()


# end to end ------------------------------------------------------------------------------

class Watcher:
    """A controller-side client (replica 2's account) on the province broker."""

    def __init__(self, fleet: ProvisionedFleet, filters: list[str]) -> None:
        user, client_id, password = fleet.controller_account(2)
        self.client = fleet.mqtt_client(user, password, client_id)
        self.received: list[tuple[str, bytes]] = []
        ready = threading.Event()
        self.client.on_message = lambda _c, _u, m: self.received.append((m.topic, m.payload))
        self.client.on_subscribe = lambda *_: ready.set()
        self.client.on_connect = lambda c, *_: c.subscribe([(f, 1) for f in filters])
        self.client.connect("127.0.0.1", fleet.broker_port)
        self.client.loop_start()
        assert ready.wait(10), "the watcher did not subscribe"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def announce(controller, text: str, in_s: float | None = None) -> int:  # type: ignore[no-untyped-def]
    body: dict[str, object] = {"text": text}
    if in_s is None:
        body["play_now"] = True
    else:
        body["start_at"] = (datetime.now(UTC) + timedelta(seconds=in_s)).isoformat()
    r = controller.post("/api/announcements", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def finished(controller, aid: int, nodes: set[str]) -> bool:  # type: ignore[no-untyped-def]
    deliveries = controller.get(f"/api/announcements/{aid}").json()["deliveries"]
    return {d["node_id"] for d in deliveries if d["status"] == "finished"} >= nodes


def events(controller, node: str) -> Counter:  # type: ignore[no-untyped-def]
    """(item, event) -> how many playback reports the controller stored."""
    rows = controller.get("/api/log", params={"node": node}).json()
    return Counter((r["item_id"], r["event"]) for r in rows)


def held_item(agent, before: set[str]) -> str | None:  # type: ignore[no-untyped-def]
    """A plan item the agent holds, with its media, that is not in ``before``."""
    plan = agent.plans.current
    for item in plan.items if plan else []:
        if item.id not in before and agent.cache.has(item.media.sha256):
            return item.id
    return None


def played_once_each(counts: Counter, items: set[str]) -> None:
    for item in items:
        assert counts[(item, "started")] == 1, counts
        assert counts[(item, "finished")] == 1, counts


def online(controller, node: str) -> bool:  # type: ignore[no-untyped-def]
    return {n["node_id"]: n for n in controller.get("/api/nodes").json()}[node]["online"]


def test_a_node_on_the_regional_broker_plays_what_the_province_controller_sends(
        controller, start_node) -> None:
    agents = [start_node("node-1"), start_node("node-3")]
    wait_for(lambda: online(controller, "node-1") and online(controller, "node-3"), 15,
             what="the regional nodes online at the province (status over the bridge)")
    aid = announce(controller, "Thông báo của tỉnh qua cầu nối.")
    wait_for(lambda: finished(controller, aid, {"node-1", "node-3"}), 60,
             what="both regional nodes to play and report back")
    for agent in agents:
        assert len(list(agent.config.audio.file_dir.glob("*.wav"))) == 1
        played_once_each(events(controller, agent.node), {held_item(agent, set()) or ""})


def test_restarting_the_regional_broker_loses_nothing(controller, start_node,
                                                       regional) -> None:
    """Stopped while the node plays: its reports and an alert wait in its outbox; a plan the
    controller publishes meanwhile waits in the bridge's session on the province broker."""
    agent = start_node("node-1")
    wait_for(lambda: online(controller, "node-1"), 15, what="node-1 online at the province")
    first = announce(controller, "Bản tin thứ nhất.", in_s=8)
    item = wait_for(lambda: held_item(agent, set()), 20, what="the plan and its media held")
    regional.stop()
    wait_for(lambda: not agent.transport.connected, 10, what="the node's link to drop")
    wait_for(lambda: agent.scheduler.item_state(item) == "finished", 30,
             what="the item to play with the regional broker down")
    camera_alert(agent, "chay-2")
    wait_for(lambda: agent.outbox.pending_count() >= 3, 5,
             what="started, finished and the alert kept on the node")
    second = announce(controller, "Bản tin thứ hai.", in_s=8)  # into the bridge's session
    time.sleep(1.0)
    regional.start()
    wait_for(lambda: finished(controller, first, {"node-1"}), 30,
             what="the reports queued on the node to reach the controller")
    wait_for(lambda: finished(controller, second, {"node-1"}), 60,
             what="the plan published while the regional broker was down to play")
    later = held_item(agent, {item})
    assert later is not None
    assert agent.outbox.pending_count() == 0
    played_once_each(events(controller, "node-1"), {item, later})
    assert [(a["node_id"], a["kind"]) for a in alerts(controller)] == [("node-1", "fire")]


def alerts(controller) -> list[dict]:  # type: ignore[no-untyped-def]
    r = controller.get("/api/alerts")
    assert r.status_code == 200, r.text
    return r.json()


def camera_alert(agent, alert_id: str) -> None:  # type: ignore[no-untyped-def]
    """What the node's camera host hands the agent (cameras are not the point here)."""
    alert = contract.Alert(id=alert_id, node=agent.node, camera="cong-truong", kind="fire",
                           at=datetime.now(UTC), confidence=0.9)
    agent.loop.call_soon_threadsafe(agent.send_alert, alert)


def test_cutting_the_bridge_link_loses_nothing(controller, start_node, broker_process) -> None:
    """The province broker restarts while the node plays and its camera raises an alert:
    the node stays on its regional broker, which holds the reports and the alert in the
    bridge's queue until the link is back; the alert reaches the controllers' shared
    subscription."""
    agent = start_node("node-1")
    wait_for(lambda: online(controller, "node-1"), 15, what="node-1 online at the province")
    aid = announce(controller, "Bản tin khi mất liên kết.", in_s=8)
    item = wait_for(lambda: held_item(agent, set()), 20, what="the plan and its media held")
    broker_process.stop()
    wait_for(lambda: agent.scheduler.item_state(item) == "finished", 30,
             what="the item to play with the province broker down")
    camera_alert(agent, "chay-1")
    wait_for(lambda: agent.outbox.pending_count() == 0, 10,
             what="the regional broker to take the reports (the node's link is up)")
    assert agent.transport.connected
    time.sleep(1.0)
    broker_process.start()
    wait_for(lambda: finished(controller, aid, {"node-1"}), 60,
             what="the reports held by the regional broker to reach the controller")
    played_once_each(events(controller, "node-1"), {item})
    got = wait_for(lambda: alerts(controller), 20, what="the alert at the controller")
    time.sleep(1.0)
    assert [(a["node_id"], a["kind"]) for a in alerts(controller)] == [("node-1", "fire")], got


def test_loaxa_fleet_bridge_declares_a_region_and_refuses_a_commune_twice(tmp_path) -> None:
    """The command line as an operator runs it; provisioning again keeps the region, and a
    region folder removed takes its bridge account off the province broker's file."""
    import json

    from typer.testing import CliRunner

    from loaxa_cli import app

    out, run = tmp_path / "fleet", CliRunner()
    r = run.invoke(app, ["fleet", "provision", "--out", str(out), "--broker-port", "18883"])
    assert r.exit_code == 0, r.output
    r = run.invoke(app, ["fleet", "bridge", "--fleet", str(out), "--region", "huyen-a",
                         "--commune", COMMUNE, "--port", "18884"])
    assert r.exit_code == 0, r.output
    r = run.invoke(app, ["fleet", "bridge", "--fleet", str(out), "--region", "huyen-b",
                         "--commune", COMMUNE, "--port", "18885"])
    assert r.exit_code == 2 and "huyen-a and huyen-b" in r.output, r.output
    assert not (out / "regions" / "huyen-b").exists()  # refused: nothing written

    def province_accounts() -> set[str]:
        dynsec = json.loads((out / "broker" / "dynamic-security.json").read_text())
        return {c["username"] for c in dynsec["clients"]}

    r = run.invoke(app, ["fleet", "provision", "--out", str(out), "--broker-port", "18883"])
    assert r.exit_code == 0, r.output
    assert "loaxa-bridge-huyen-a" in province_accounts()
    assert "port: 18884" in (out / "nodes" / "node-1" / "node.yaml").read_text()
    regional = json.loads((out / "regions" / "huyen-a" / "broker" / "dynamic-security.json")
                          .read_text())
    assert {c["username"] for c in regional["clients"]} == {
        "loaxa-admin", "node-1", "node-2", "node-3"}  # its nodes; no controller
    (out / "regions" / "huyen-a" / "region.json").unlink()
    r = run.invoke(app, ["fleet", "provision", "--out", str(out), "--broker-port", "18883"])
    assert r.exit_code == 0, r.output
    assert "loaxa-bridge-huyen-a" not in province_accounts()
    assert "port: 18883" in (out / "nodes" / "node-1" / "node.yaml").read_text()
