"""Remote operations end to end: the API, the real broker, real agents (in-process and a
``loaxa edge run`` subprocess), each node's reply, the audit log, roles, and a config
push that is kept or rolled back."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from firmware_config.broker import free_port
from tests.conftest import REPO, make_user, wait_for

NODE = "node-1"


@pytest.fixture
def start_file_node(start_node):  # type: ignore[no-untyped-def]
    """A real EdgeAgent started from its config *file* (a config push rewrites it)."""
    return lambda node_id=NODE: start_node(node_id, from_file=True)


def run(controller, body: dict, headers: dict | None = None, status: int = 200) -> dict:  # type: ignore[no-untyped-def]
    r = controller.post("/api/operations", json={"wait_s": 15, **body}, headers=headers or {})
    assert r.status_code == status, r.text
    return r.json()


def only(op: dict) -> dict:
    assert len(op["nodes"]) == 1, op
    return op["nodes"][0]


def audit_rows(controller, operation_id: str) -> list[Any]:  # type: ignore[no-untyped-def]
    from controller.models import AuditEvent

    with controller.runtime.db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.entity == "operation",
                                                       AuditEvent.entity_id == operation_id)))


def config_doc(broker, node_id: str = NODE) -> dict:  # type: ignore[no-untyped-def]
    return yaml.safe_load(broker.node_configs[node_id].read_text())


# ------------------------------------------------------------------ each operation


def test_volume_test_tone_and_versions_answer_through_the_api_and_are_audited(
        controller, broker, start_file_node):
    from mqtt_contract import SOFTWARE_VERSION

    agent = start_file_node()
    leader = make_user(controller, "lanh-dao", "leader")

    op = run(controller, {"kind": "volume", "nodes": [NODE], "volume": 55}, leader)
    answer = only(op)
    assert (answer["state"], answer["ok"], answer["code"]) == ("answered", True, "done")
    assert answer["message"] == "Đã đặt âm lượng 55"
    assert op["finished"] and op["actor"] == "lanh-dao"
    assert agent.volume() == 55, "the node changed its volume"

    op = run(controller, {"kind": "test_tone", "nodes": [NODE]})
    assert only(op)["message"] == "Đang phát tiếng thử"
    sink = agent.config.audio.file_dir
    wait_for(lambda: list(sink.glob("*.wav")), 15, what="the test tone in the file sink")

    op = run(controller, {"kind": "versions", "nodes": [NODE]})
    data = only(op)["data"]
    assert data["software"] == SOFTWARE_VERSION
    assert data["config_sha256"] == hashlib.sha256(
        broker.node_configs[NODE].read_bytes()).hexdigest()
    assert data["python"] == ".".join(map(str, sys.version_info[:3]))
    assert data["os"]
    assert only(op)["message"].startswith(f"Phần mềm {SOFTWARE_VERSION} · cấu hình bản ")

    # every operation is audited once, naming who ran it
    rows = audit_rows(controller, op["id"])
    assert [(r.actor, r.action) for r in rows] == [("admin", "operation_versions")]
    volume_op = [r for r in _all_audit(controller) if r.action == "operation_volume"]
    assert [(r.actor, r.detail["volume"], r.detail["nodes"]) for r in volume_op] == [
        ("lanh-dao", 55, [NODE])]
    # the results can be read again later
    again = controller.get(f"/api/operations/{op['id']}")
    assert again.status_code == 200 and only(again.json())["data"] == data


def _all_audit(controller) -> list[Any]:  # type: ignore[no-untyped-def]
    from controller.models import AuditEvent

    with controller.runtime.db.session() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_a_node_that_does_not_answer_is_listed_as_not_answered(controller, broker,
                                                                start_node):
    start_node(NODE)  # node-2 and node-3 are registered but not running
    controller.runtime.operations.reply_timeout_s = 2.0
    op = run(controller, {"kind": "versions", "all": True, "wait_s": 10})
    states = {n["node_id"]: (n["state"], n["message"]) for n in op["nodes"]}
    assert states[NODE][0] == "answered"
    assert states["node-2"] == ("no_answer", "Không trả lời")
    assert states["node-3"] == ("no_answer", "Không trả lời")
    assert op["finished"]

    # a short wait returns at once with the nodes still waiting; read them back later
    controller.runtime.operations.reply_timeout_s = 3.0
    op = run(controller, {"kind": "versions", "nodes": ["node-2"], "wait_s": 0})
    assert only(op)["state"] == "waiting" and only(op)["message"] == "Đang chờ trả lời…"
    assert not op["finished"]
    later = wait_for(lambda: (r := controller.get(f"/api/operations/{op['id']}").json())
                     ["finished"] and r, 10, what="the deadline")
    assert only(later)["state"] == "no_answer"
    r = controller.get("/api/operations/not-an-operation")
    assert r.status_code == 404 and r.json()["detail"]["code"] == "unknown_operation"


def test_restart_makes_a_subprocess_agent_exit_with_the_restart_code(controller, broker,
                                                                      tmp_path: Path):
    from mqtt_contract import RESTART_EXIT_CODE

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log_file = (tmp_path / "agent.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "loaxa_cli", "edge", "run", "--config",
                             str(broker.node_configs[NODE])], cwd=tmp_path, env=env,
                            stdout=log_file, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _online(controller, NODE), 30, what="the subprocess node online")
        op = run(controller, {"kind": "restart", "nodes": [NODE]})
        assert only(op)["code"] == "done"
        assert only(op)["message"] == "Đang khởi động lại phần mềm"
        assert proc.wait(20) == RESTART_EXIT_CODE
        # a clean exit: it said goodbye itself (retained offline status)
        wait_for(lambda: not _online(controller, NODE), 10, what="the node offline")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log_file.close()
    assert b"Traceback" not in (tmp_path / "agent.log").read_bytes()


def _online(controller, node_id: str) -> bool:  # type: ignore[no-untyped-def]
    return bool(controller.get(f"/api/nodes/{node_id}").json()["online"])


def test_restart_without_a_supervisor_is_refused_by_the_node(controller, broker, start_node):
    start_node(NODE)  # in-process: nobody would start it again
    answer = only(run(controller, {"kind": "restart", "nodes": [NODE]}))
    assert (answer["ok"], answer["code"]) == (False, "refused")
    assert answer["message"] == "Cụm loa từ chối thao tác này"


# ------------------------------------------------------------------ config push


def test_a_pushed_config_that_connects_is_kept(controller, broker, start_file_node):
    agent = start_file_node()
    path = broker.node_configs[NODE]
    old = path.read_bytes()
    doc = config_doc(broker)
    doc["mqtt"]["keepalive_s"] = 20
    doc["name"] = "Thôn 1 – Nhà văn hoá (mới)"
    op = run(controller, {"kind": "config", "nodes": [NODE], "trial_s": 5,
                          "config_yaml": yaml.safe_dump(doc, allow_unicode=True),
                          "wait_s": 30})
    answer = only(op)
    assert (answer["ok"], answer["code"]) == (True, "done"), answer
    assert answer["message"] == "Đã áp dụng cấu hình mới"
    assert yaml.safe_load(path.read_text()) == doc
    assert path.with_name(path.name + ".previous").read_bytes() == old
    assert not path.with_name(path.name + ".trial").exists()
    assert agent.transport.settings.keepalive_s == 20 and agent.transport.connected
    # the node keeps working on the new link
    assert only(run(controller, {"kind": "volume", "nodes": [NODE], "volume": 30}))["ok"]
    rows = [r for r in _all_audit(controller) if r.action == "operation_config"]
    assert len(rows) == 1 and rows[0].actor == "admin"
    assert "config_sha256" in rows[0].detail and "mqtt" not in str(rows[0].detail)


def test_a_pushed_config_with_a_wrong_broker_port_is_rolled_back(controller, broker,
                                                                 start_file_node):
    agent = start_file_node()
    path = broker.node_configs[NODE]
    old = path.read_bytes()
    doc = config_doc(broker)
    doc["mqtt"]["port"] = free_port()  # nothing listens there
    op = run(controller, {"kind": "config", "nodes": [NODE], "trial_s": 3,
                          "config_yaml": yaml.safe_dump(doc, allow_unicode=True),
                          "wait_s": 30})
    answer = only(op)
    assert (answer["ok"], answer["code"]) == (False, "rolled_back"), answer
    assert answer["message"] == ("Cấu hình mới không kết nối được; cụm loa đã quay lại "
                                 "cấu hình cũ")
    assert path.read_bytes() == old, "the old config file is back, byte for byte"
    assert not path.with_name(path.name + ".trial").exists()
    assert agent.transport.settings.port == broker.broker_port and agent.transport.connected
    assert only(run(controller, {"kind": "volume", "nodes": [NODE], "volume": 40}))["ok"]


def test_an_agent_restarted_during_a_trial_tries_again_then_rolls_back(broker, tmp_path):
    """The trial marker survives the process: the restarted agent runs on the new config,
    and rolls back to the old one when that does not connect either."""
    from edge.agent import EdgeAgent
    from edge.operations import write_atomically
    from firmware_config.schema import load_node_config

    path = broker.node_configs[NODE]
    old = path.read_bytes()
    doc = config_doc(broker)
    doc["mqtt"]["port"] = free_port()
    write_atomically(path.with_name(path.name + ".previous"), old)
    write_atomically(path.with_name(path.name + ".trial"), b'{"command_id": "c1", '
                                                           b'"trial_s": 2}')
    write_atomically(path, yaml.safe_dump(doc).encode())
    agent = EdgeAgent(load_node_config(path), config_path=path)
    agent.start()
    try:
        assert agent.connected.wait(15), "rolled back and connected with the old config"
        assert path.read_bytes() == old
    finally:
        agent.stop()


def test_a_config_the_node_cannot_use_is_refused_on_the_node(controller, broker,
                                                             start_file_node):
    """Past the controller's checks (sent straight to the desk), the node checks too."""
    from controller.security import Role
    from controller.services.operations import OperationKind

    start_file_node()
    path = broker.node_configs[NODE]
    old = path.read_bytes()
    desk = controller.runtime.operations
    cases = {"unknown key": {**config_doc(broker), "volumee": 3},
             "another node": {**config_doc(broker), "node_id": "node-2"},
             "unreadable password": {**config_doc(broker), "mqtt": {
                 **config_doc(broker)["mqtt"], "password_file": "/nonexistent/pass"}}}
    for what, doc in cases.items():
        op = desk.wait(desk.start(controller.runtime.db, "admin", Role.admin,
                                  OperationKind.config, [NODE], node_config=doc,
                                  trial_s=3), 15)
        reply = op.nodes[NODE].reply
        assert reply is not None and (reply.ok, reply.code) == (False, "invalid"), what
        assert path.read_bytes() == old, what


def test_the_api_checks_a_config_before_sending_it(controller, broker):
    doc = config_doc(broker)
    cases = [({"config_yaml": "node_id: [unclosed"}, "config_not_yaml"),
             ({"config_yaml": yaml.safe_dump({**doc, "mqtt": {"port": 0}})}, "config_invalid"),
             ({"config_yaml": yaml.safe_dump({**doc, "node_id": "node-2"})},
              "config_other_node"),
             ({"config_yaml": yaml.safe_dump(doc), "nodes": [NODE, "node-2"]},
              "config_one_node"),
             ({}, "config_missing")]
    for extra, code in cases:
        r = controller.post("/api/operations", json={"kind": "config", "nodes": [NODE],
                                                     **extra})
        assert r.status_code == 422, (code, r.text)
        detail = r.json()["detail"]
        assert detail["code"] == code
        assert "127.0.0.1" not in detail["message"] and "Traceback" not in detail["message"]
    r = controller.post("/api/operations", json={"kind": "config", "nodes": [NODE],
                                                 "config_yaml": yaml.safe_dump(
                                                     {**doc, "mqtt": {"port": 0}})})
    assert r.json()["detail"]["message"] == "Cấu hình không hợp lệ ở mục: mqtt.port."
    r = controller.post("/api/operations", json={"kind": "versions", "nodes": ["node-9"]})
    assert r.status_code == 404 and r.json()["detail"]["code"] == "unknown_node"
    assert not [r for r in _all_audit(controller) if r.action.startswith("operation_")], \
        "nothing refused was audited as done"


# ------------------------------------------------------------------ roles


@pytest.fixture
def role_headers(controller) -> Iterator[dict[str, dict]]:  # type: ignore[no-untyped-def]
    yield {role: make_user(controller, f"u-{role}", role)
           for role in ("staff", "leader", "officer")} | {"admin": {}}


def test_only_who_should_may_run_each_operation(controller, broker, role_headers):
    from controller.services.operations import ALLOWED_ROLES, OperationKind

    controller.runtime.operations.reply_timeout_s = 0.5
    doc = yaml.safe_dump(config_doc(broker))
    bodies = {OperationKind.volume: {"volume": 10}, OperationKind.config: {
        "config_yaml": doc}}
    for kind in OperationKind:
        for role, headers in role_headers.items():
            r = controller.post("/api/operations", headers=headers, json={
                "kind": kind.value, "nodes": [NODE], "wait_s": 0, **bodies.get(kind, {})})
            allowed = role in {r.value for r in ALLOWED_ROLES[kind]}
            want = 200 if allowed else 403
            assert r.status_code == want, (kind, role, r.text)
            if not allowed and role != "officer":
                assert r.json()["detail"]["code"] == "operation_forbidden"
    assert {r.value for r in ALLOWED_ROLES[OperationKind.config]} == {"admin"}
    assert "staff" not in {r.value for r in ALLOWED_ROLES[OperationKind.restart]}


# ------------------------------------------------------------------ forged and stale replies


def test_a_node_cannot_answer_for_another_node(controller, broker):
    """node-2's account answers node-1's operation, on its own topic and (refused by the
    ACL) on node-1's: neither counts; node-1 is still listed as not answering."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from firmware_config.schema import load_node_config
    from mqtt_contract import REPLY, Reply

    controller.runtime.operations.reply_timeout_s = 3.0
    op = run(controller, {"kind": "versions", "nodes": [NODE], "wait_s": 0})
    dropped_before = controller.runtime.link.dropped_messages
    cfg = load_node_config(broker.node_configs["node-2"])
    client = broker.mqtt_client(cfg.username, broker.node_password("node-2"),
                                broker.node_client_id("node-2"), broker.node_tls("node-2"))
    client.connect(cfg.mqtt.host, cfg.mqtt.port)
    client.loop_start()
    try:
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = op["id"].encode()
        for topic_node, claimed in (("node-2", "node-2"), ("node-2", NODE), (NODE, NODE)):
            forged = Reply(node=claimed, command_id=op["id"], ok=True, data={"software": "x"})
            info = client.publish(REPLY.topic("xa-demo", node=topic_node), forged.to_bytes(),
                                  qos=1, properties=props)
            info.wait_for_publish(5)
        later = wait_for(lambda: (r := controller.get(f"/api/operations/{op['id']}").json())
                         ["finished"] and r, 10, what="the deadline")
    finally:
        client.loop_stop()
        client.disconnect()
    assert only(later)["state"] == "no_answer" and only(later)["data"] is None
    # they did arrive: one matched no operation of node-2's, one spoke for another node
    # on node-2's topic; the one on node-1's topic the broker's ACL kept away
    assert controller.runtime.operations.unmatched == 1
    assert controller.runtime.link.dropped_messages == dropped_before + 1


def test_the_operation_desk_is_bounded(controller, broker):
    desk = controller.runtime.operations
    desk.capacity = 3
    ids = [run(controller, {"kind": "versions", "nodes": [NODE], "wait_s": 0})["id"]
           for _ in range(5)]
    assert len(desk) == 3
    assert controller.get(f"/api/operations/{ids[0]}").status_code == 404
    assert controller.get(f"/api/operations/{ids[-1]}").status_code == 200


def test_a_kept_config_that_changes_more_than_the_link_restarts_a_supervised_agent(
        controller, broker, tmp_path: Path):
    """Under a supervisor (`loaxa edge run`), a kept config that changes other settings
    makes the agent exit with the restart code after its reply: systemd starts it on the
    whole new file."""
    from mqtt_contract import RESTART_EXIT_CODE

    path = broker.node_configs[NODE]
    doc = config_doc(broker)
    doc["telemetry_interval_s"] = 7
    log_file = (tmp_path / "agent.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "loaxa_cli", "edge", "run", "--config",
                             str(path)], cwd=tmp_path, env={**os.environ,
                                                            "PYTHONPATH": str(REPO)},
                            stdout=log_file, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _online(controller, NODE), 30, what="the subprocess node online")
        op = run(controller, {"kind": "config", "nodes": [NODE], "trial_s": 5,
                              "config_yaml": yaml.safe_dump(doc, allow_unicode=True),
                              "wait_s": 30})
        assert only(op)["code"] == "done", op
        assert proc.wait(20) == RESTART_EXIT_CODE
        assert yaml.safe_load(path.read_text())["telemetry_interval_s"] == 7
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log_file.close()
