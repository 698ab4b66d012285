"""Signed plans and commands, attacked as in the trust issue: a real broker, real agents.

The attacker holds the controller's MQTT password (it sat in files every node container
mounted) but not its signing key. Every forged, replayed, expired, mis-addressed or
poisoned message must change nothing on the node, be counted in its telemetry, and leave
the real controller's plans and commands working.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
import yaml

import mqtt_contract as contract
from controller.signing import KeyFolder, Signer
from firmware_config.provision import provision
from mqtt_contract import (
    MAX_INT64,
    Command,
    CommandKind,
    Plan,
    PlanItem,
    Refusal,
    Target,
    parse_topic,
)
from tests.conftest import EXAMPLES, wait_for
from tests.trust_helpers import COMMUNE, signed_command, signed_plan, signer_for

pytestmark = pytest.mark.slow


def attacker(fleet, user: str | None = None) -> mqtt.Client:  # type: ignore[no-untyped-def]
    """A client with a controller account (replica 2's username, password and bound
    client id over TLS), not its signing key; or with a node's account (``user``), which
    may read what is sent to that node."""
    if user is None:
        username, client_id, password = fleet.controller_account(2)
        client = fleet.mqtt_client(username, password, client_id)
    else:
        client = fleet.mqtt_client(user, fleet.node_password(user), fleet.node_client_id(user),
                                   fleet.node_tls(user))
    connected = threading.Event()
    client.on_connect = lambda c, u, f, reason, *_: (not reason.is_failure
                                                     and connected.set())
    client.connect("127.0.0.1", fleet.broker_port)
    client.loop_start()
    assert connected.wait(10), "the attacker's client did not connect"
    return client


def send(client: mqtt.Client, topic: str, payload: bytes, retain: bool = False) -> None:
    client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)


def wavs(agent) -> list:  # type: ignore[no-untyped-def]
    return sorted(agent.config.audio.file_dir.glob("*.wav"))


def refused(agent, reason: Refusal) -> int:  # type: ignore[no-untyped-def]
    return agent.gate.counts().get(reason, 0)


def tone(**kw: object) -> Command:
    return Command(kind=CommandKind.test_tone, volume=100, **kw)


def test_forged_broadcast_plays_nothing_and_is_counted(broker, start_node, tmp_path):
    """Unsigned, or signed with a key of the attacker's own: no node plays the tone."""
    agents = [start_node(n, telemetry_interval_s=1) for n in ("node-1", "node-3")]
    bad = attacker(broker)
    all_cmd = contract.ALL_CMD.topic(COMMUNE)
    send(bad, all_cmd, tone().to_bytes())
    own_key = Signer(tmp_path / "attacker-key")
    send(bad, all_cmd, signed_command(own_key, tone(), Target.all, None).to_bytes())
    for agent in agents:
        wait_for(lambda a=agent: refused(a, Refusal.unsigned) == 1
                 and refused(a, Refusal.unknown_key) == 1, 10, what="both forgeries refused")
    time.sleep(1.5)  # a tone would have started by now
    assert all(wavs(a) == [] and a.scheduler.now_playing() is None for a in agents)
    # the refusals reach the operator in the telemetry (what the controller stores)
    seen: list[contract.Telemetry] = []
    telemetry_of = contract.TELEMETRY.topic(COMMUNE, node="node-1")
    bad.on_message = lambda c, u, m: (m.topic == telemetry_of and seen.append(
        contract.parse(contract.Telemetry, m.payload)))
    bad.subscribe(contract.TELEMETRY.filter(), qos=0)  # the controller's own subscription
    wait_for(lambda: any(t.refused.get(Refusal.unsigned) == 1
                         and t.refused.get(Refusal.unknown_key) == 1 for t in seen), 10,
             what="node-1's telemetry to count the refusals")
    # the real key still works on the same topic
    send(bad, all_cmd, signed_command(signer_for(broker), tone(), Target.all, None).to_bytes())
    for agent in agents:
        wait_for(lambda a=agent: wavs(a), 15, what="the signed tone to play")
    bad.loop_stop()


def test_a_captured_command_replayed_with_a_new_id_changes_nothing(controller, broker,
                                                                     start_node):
    agent = start_node("node-1")
    # what a captured node reads: the command bytes exactly as the broker delivered them
    # (its account is bound to its client id, so a second client would only kick it off)
    captured: list[bytes] = []
    dispatch = agent.dispatcher.dispatch

    def spy(topic: str, payload: bytes, properties: object = None) -> bool:
        if parse_topic(topic).spec_name == contract.NODE_CMD.name:
            captured.append(payload)
        return dispatch(topic, payload, properties)

    agent.dispatcher.dispatch = spy  # type: ignore[method-assign]
    for volume in (35, 50):
        r = controller.post("/api/nodes/node-1/commands", json={"kind": "volume",
                                                                "volume": volume})
        assert r.status_code == 202, r.text
        wait_for(lambda v=volume: agent.volume() == v, 10, what=f"volume {volume}")
    wait_for(lambda: len(captured) == 2, 5, what="the attacker to capture both commands")
    first = json.loads(captured[0])
    assert first["sig"]["target"] == "node" and first["sig"]["to"] == "node-1"
    topic = contract.NODE_CMD.topic(COMMUNE, node="node-1")
    bad = attacker(broker)
    send(bad, topic, json.dumps({**first, "id": "replayed-with-a-new-id"}).encode())
    send(bad, topic, captured[0])  # exactly as captured, after a newer one
    wait_for(lambda: refused(agent, Refusal.bad_signature) == 1
             and refused(agent, Refusal.replayed) == 1, 10, what="both replays refused")
    assert agent.volume() == 50
    # the order survives a restart: the same replay is still refused
    agent.stop()
    again = start_node("node-1")
    send(bad, topic, captured[0])
    wait_for(lambda: refused(again, Refusal.replayed) == 1, 10,
             what="the replay refused after a restart")
    assert again.volume() == 50
    bad.loop_stop()


def test_expired_and_misaddressed_commands_are_refused(broker, start_node):
    agent = start_node("node-1")  # zone thon-1 of xa-demo
    signer, bad = signer_for(broker), attacker(broker)
    node_topic = contract.NODE_CMD.topic(COMMUNE, node="node-1")
    volume = lambda v: Command(kind=CommandKind.volume, volume=v)  # noqa: E731
    send(bad, node_topic, signed_command(signer, volume(11), ttl_s=-1).to_bytes())
    send(bad, node_topic, signed_command(signer, volume(12), to="node-2").to_bytes())
    send(bad, node_topic, signed_command(signer, volume(13), commune="xa-khac").to_bytes())
    send(bad, contract.ZONE_CMD.topic(COMMUNE, zone="thon-1"),
         signed_command(signer, volume(14), Target.zone, "thon-2").to_bytes())
    send(bad, contract.ALL_CMD.topic(COMMUNE),
         signed_command(signer, volume(15), Target.zone, "thon-2").to_bytes())
    wait_for(lambda: (refused(agent, Refusal.expired), refused(agent, Refusal.wrong_target),
                      refused(agent, Refusal.wrong_commune)) == (1, 3, 1), 10,
             what="five refusals")
    assert agent.volume() == 80  # the config's volume: nothing took effect
    send(bad, contract.ZONE_CMD.topic(COMMUNE, zone="thon-1"),
         signed_command(signer, volume(16), Target.zone, "thon-1").to_bytes())
    wait_for(lambda: agent.volume() == 16, 10, what="the well-addressed command")
    bad.loop_stop()


def poisoned_plan(start_in_s: float) -> Plan:
    ref = contract.MediaRef(sha256="e" * 64, size=1000, codec="wav", duration_s=3)
    return Plan(node="node-1", version=MAX_INT64, items=[PlanItem(
        id="attacker", title="attacker", media=ref, priority=contract.Priority.emergency,
        start_at=datetime.now(UTC) + timedelta(seconds=start_in_s))])


def test_a_poisoned_plan_is_refused_and_real_plans_keep_applying(controller, broker,
                                                                  start_node):
    agent = start_node("node-1")
    plan_topic = contract.PLAN.topic(COMMUNE, node="node-1")
    wait_for(lambda: agent.plans.version is not None, 10, what="the controller's first plan")
    bad = attacker(broker)
    send(bad, plan_topic, poisoned_plan(2).to_bytes(), retain=True)
    # the same, signed with the real key (a bug or a wrong clock at the controller): the
    # version runs far ahead of its signing time, so it is refused too
    send(bad, plan_topic, signed_plan(signer_for(broker), poisoned_plan(2)).to_bytes(),
         retain=True)
    wait_for(lambda: refused(agent, Refusal.unsigned) == 1
             and refused(agent, Refusal.version_ahead) == 1, 10, what="both refused")
    assert agent.plans.version != MAX_INT64
    r = controller.post("/api/announcements", json={
        "text": "Thông báo họp thôn.", "engine": "espeak-ng", "nodes": ["node-1"],
        "play_now": True})
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    wait_for(lambda: any(d["status"] == "finished" for d in controller.get(
        f"/api/announcements/{aid}").json()["deliveries"]), 40, what="the real announcement")
    node = controller.get("/api/nodes/node-1").json()
    assert node["plan_version_acked"] == node["plan_version"] == agent.plans.version
    # the operator sees the refusals in the node's telemetry, through the API
    assert node["telemetry"]["refused"] == {"unsigned": 1, "version_ahead": 1}
    assert all(item.id != "attacker" for item in agent.plans.current.items)
    bad.loop_stop()


def test_key_rotation_next_key_accepted_old_key_refused_after_retirement(
        controller, broker, start_node, tmp_path):
    folder = KeyFolder(broker.signing_dir)
    old = tmp_path / "old-key"
    shutil.copytree(broker.signing_dir, old)  # what someone holding the old key could sign
    folder.rotate()
    fleet = provision(EXAMPLES, broker.root)  # nodes trust both keys
    assert len(yaml.safe_load(fleet.node_configs["node-1"].read_text())["trusted_keys"]) == 2
    agent = start_node("node-1")

    def volume(v: int) -> None:
        r = controller.post("/api/nodes/node-1/commands", json={"kind": "volume", "volume": v})
        assert r.status_code == 202, r.text
        wait_for(lambda: agent.volume() == v, 10, what=f"volume {v}")

    volume(30)  # the controller still signs with the current key
    folder.finish()
    assert controller.runtime.link.signer.key_id == Signer(broker.signing_dir).key_id
    volume(40)  # the running controller signs with the next key now; the node takes it
    controller.runtime.publish_plans()  # the plan refresh re-signs the retained plans
    provision(EXAMPLES, broker.root)  # nodes trust only the new key
    agent.stop()
    agent = start_node("node-1")
    bad = attacker(broker)
    send(bad, contract.NODE_CMD.topic(COMMUNE, node="node-1"),
         signed_command(Signer(old), Command(kind=CommandKind.volume, volume=5)).to_bytes())
    wait_for(lambda: refused(agent, Refusal.unknown_key) == 1, 10, what="the old key refused")
    assert agent.volume() == 40
    volume(45)
    bad.loop_stop()
