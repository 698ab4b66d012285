"""Bad input is logged and dropped, the process keeps working; the broker refuses strangers."""

from __future__ import annotations

import paho.mqtt.client as mqtt
import pytest

import mqtt_contract as contract
from mqtt_contract import Command, CommandKind, Status, new_client
from tests.conftest import wait_for
from tests.trust_helpers import signed_command, signer_for

GARBAGE = [b"", b"not json", b'{"v": 1}', b"[1,2,3]", b"\xff\xfe\x00", b'{"v": 99}']
COMMUNE = "xa-demo"
ROOT = f"{contract.ROOT}/{COMMUNE}"


def node_topic(spec: contract.TopicSpec, node: str) -> str:
    return spec.topic(COMMUNE, node=node)


def connect(fleet, username: str, password: str) -> mqtt.Client:  # type: ignore[no-untyped-def]
    """A raw client of ``username``, with the client id the broker binds to that account
    and the fleet's TLS files (the broker has no plain listener)."""
    if username in fleet.node_configs:
        client = fleet.mqtt_client(username, password, fleet.node_client_id(username),
                                   fleet.node_tls(username))
    else:
        client = fleet.mqtt_client(username, password, fleet.controller_client_id)
    client.connect("127.0.0.1", fleet.broker_port)
    client.loop_start()
    return client


def publish_all(client: mqtt.Client, topics: list[str], payloads: list[bytes]) -> None:
    for topic in topics:
        for payload in payloads:
            client.publish(topic, payload, qos=1).wait_for_publish(5)


def announce_online(client: mqtt.Client, controller, node: str, what: str) -> None:  # type: ignore[no-untyped-def]
    """Publish ``node``'s retained online status and wait for the controller to show it."""
    client.publish(node_topic(contract.STATUS, node), Status(node=node, online=True).to_bytes(),
                   1, retain=True).wait_for_publish(5)
    wait_for(lambda: {n["node_id"]: n for n in controller.get("/api/nodes").json()}[node]
             ["online"], 10, what=what)


def node_password(fleet, node: str) -> str:  # type: ignore[no-untyped-def]
    return fleet.node_password(node)


def test_controller_drops_malformed_messages_on_every_inbound_topic(controller, broker):
    link = controller.runtime.link
    node = connect(broker, "node-1", node_password(broker, "node-1"))
    inbound = [
        node_topic(spec, "node-1")
        for spec in contract.TOPICS
        if spec.sender == contract.Account.node
    ]
    publish_all(node, inbound, GARBAGE)
    wait_for(
        lambda: link.dropped_messages >= len(inbound) * len(GARBAGE) - len(GARBAGE),
        10,
        what="the controller to drop every malformed message",
    )
    # still working: a valid status is applied and the API answers
    announce_online(node, controller, "node-1", "node-1 online after the garbage")
    assert controller.get("/healthz").json()["status"] == "ok"
    node.loop_stop()


def test_node_drops_malformed_messages_on_every_inbound_topic(broker, start_node):
    agent = start_node("node-1")
    ctl = connect(broker, broker.controller_user, broker.controller_password)
    inbound = [
        node_topic(contract.PLAN, "node-1"),
        node_topic(contract.NODE_CMD, "node-1"),
        contract.ZONE_CMD.topic(COMMUNE, zone="thon-1"),
        contract.ALL_CMD.topic(COMMUNE),
    ]
    publish_all(ctl, inbound, GARBAGE)
    sha = "0" * 64
    publish_all(ctl, [f"{ROOT}/media/{sha}/notanumber", f"{ROOT}/media/nothex/1"], [b"x"])
    wait_for(
        lambda: agent.dropped_messages >= len(inbound) * len(GARBAGE),
        10,
        what="the node to drop every malformed message",
    )
    # a plan for another node is refused too
    ctl.publish(
        node_topic(contract.PLAN, "node-1"), b'{"v":1,"node":"node-2","version":1,"items":[]}', 1
    ).wait_for_publish(5)
    # still working: a valid command takes effect
    ctl.publish(
        node_topic(contract.NODE_CMD, "node-1"),
        signed_command(signer_for(broker), Command(kind=CommandKind.volume, volume=35))
        .to_bytes(),
        1,
    ).wait_for_publish(5)
    wait_for(lambda: agent.volume() == 35, 10, what="the volume command after the garbage")
    assert agent.store.load_plan() is None
    ctl.loop_stop()


def connack(client: mqtt.Client, fleet):  # type: ignore[no-untyped-def]
    """Connect over the fleet's TLS and return the broker's CONNACK reason code."""
    from firmware_config.broker import apply_tls

    apply_tls(client, fleet.controller_tls)
    result: dict[str, object] = {}
    client.on_connect = lambda c, u, f, reason, p: result.setdefault("reason", reason)
    client.connect("127.0.0.1", fleet.broker_port)
    client.loop_start()
    wait_for(lambda: "reason" in result, 5, what="CONNACK")
    client.loop_stop()
    return result["reason"]


@pytest.mark.parametrize(
    "username,password", [("node-1", "wrong"), ("nobody", "x"), ("loaxa-controller", "")]
)
def test_broker_refuses_wrong_credentials(broker, username, password):
    reason = connack(new_client("intruder", username, password), broker)
    assert reason.is_failure
    assert "authori" in str(reason).lower() or "bad user" in str(reason).lower()


def test_broker_refuses_anonymous(broker):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    assert connack(client, broker).is_failure


def test_acl_keeps_a_node_to_its_own_topics(controller, broker):
    """node-1's account cannot speak for node-2 nor read node-2's plan."""
    node1 = connect(broker, "node-1", node_password(broker, "node-1"))
    node1.publish(
        node_topic(contract.STATUS, "node-2"),
        Status(node="node-2", online=True).to_bytes(),
        1,
        retain=True,
    ).wait_for_publish(5)
    seen: list[str] = []
    node1.on_message = lambda c, u, m: seen.append(m.topic)
    node1.subscribe(node_topic(contract.PLAN, "node-2"), 1)
    controller.runtime.publish_plans()
    announce_online(node1, controller, "node-1", "node-1's own status")
    nodes = {n["node_id"]: n for n in controller.get("/api/nodes").json()}
    assert nodes["node-2"]["online"] is False
    assert node_topic(contract.PLAN, "node-2") not in seen
    node1.loop_stop()


def test_a_nul_character_is_the_callers_mistake_on_either_database(controller) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL refuses a NUL in text (SQLite stores it): schemathesis found a sign-in
    with one answered 500 on the PostgreSQL pass. A username with one names no account;
    text with one is a 422 there, never a 500."""
    r = controller.post("/api/auth/token", data={"username": "ad\x00min", "password": "x"},
                        headers={"Authorization": ""})
    assert r.status_code == 401, r.text
    r = controller.put("/api/lexicon", json={"term": "xã\x00", "reading": "xã"})
    assert r.status_code in (200, 422), r.text
