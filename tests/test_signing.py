"""The signed envelope on its own: canonical bytes, verification, the key folder, the
sequence, the node's gate and provisioning's trusted keys. No broker here."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller import signing
from controller.mqtt_link import MqttLink, NotSigned
from controller.signing import KeyFolder, KeyFolderError, SequenceClock, Signer
from edge.store import NodeStore
from edge.trust import Gate
from firmware_config.provision import provision
from firmware_config.schema import ConfigError, load_node_config, parse_node_config
from mqtt_contract import (
    MAX_INT64,
    PLAN_VERSION_LEAD_MS,
    Command,
    CommandKind,
    Plan,
    Refusal,
    Target,
    canonical_bytes,
    decode_public_key,
    key_id,
    parse,
    verify_signature,
)
from tests.conftest import EXAMPLES


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Signer:
    return Signer(tmp_path_factory.mktemp("key"))


def trusted(signer: Signer) -> dict[str, bytes]:
    raws = [decode_public_key(k) for k in signer.folder.public_keys()]
    return {key_id(r): r for r in raws}


def received(message: Command | Plan) -> Command | Plan:
    """What a node holds after the wire: parsed from the bytes sent."""
    return parse(type(message), message.to_bytes())


# --------------------------------------------------------------------------- canonical bytes
def test_canonical_bytes_sort_keys_drop_only_the_signature_and_keep_unknown_fields():
    doc = {"z": 1, "a": {"y": "é", "b": [1.5, None]}, "sig": {"seq": 3, "signature": "xx"}}
    assert canonical_bytes(doc) == (b'{"a":{"b":[1.5,null],"y":"\\u00e9"},"sig":{"seq":3},'
                                    b'"z":1}')
    assert canonical_bytes({**doc, "sig": {"seq": 3, "signature": "other"}}) == (
        canonical_bytes(doc))
    assert canonical_bytes({**doc, "extra": True}) != canonical_bytes(doc)
    with pytest.raises(ValueError):
        canonical_bytes({"x": float("nan")})


def test_a_field_this_side_does_not_know_is_still_covered(signer: Signer):
    """A newer controller's field, unknown to the node's model, keeps its signature valid,
    and adding one breaks it (the check is over the document as sent)."""
    doc = json.loads(signer.sign(Command(kind=CommandKind.stop), "xa", Target.all, None,
                                 60).to_bytes())
    with_new_field = {**doc, "sig": doc["sig"]}
    signed_again = parse(Command, json.dumps(doc, indent=2).encode())  # spacing is free
    assert verify_signature(signed_again, trusted(signer)) is None
    with_new_field["reply_to"] = "somewhere"
    assert verify_signature(parse(Command, json.dumps(with_new_field)),
                            trusted(signer)) == Refusal.bad_signature


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(list(CommandKind)), volume=st.none() | st.integers(0, 100),
       repeat=st.integers(1, 20),
       item=st.none() | st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1,
                                max_size=40),  # a NUL is malformed: parse drops it
       target=st.sampled_from([(Target.node, "node-1"), (Target.zone, "thon-1"),
                               (Target.all, None)]))
def test_every_signed_command_verifies_after_the_wire_and_no_change_does(
        signer: Signer, kind, volume, repeat, item, target):
    cmd = Command(kind=kind, volume=volume, repeat=repeat, item_id=item)
    signed = signer.sign(cmd, "xa-demo", target[0], target[1], 60)
    assert verify_signature(received(signed), trusted(signer)) is None
    doc = json.loads(signed.to_bytes())
    for change in ({"id": doc["id"] + "x"}, {"repeat": repeat % 20 + 1},
                   {"sig": {**doc["sig"], "seq": doc["sig"]["seq"] + 1}},
                   {"sig": {**doc["sig"], "commune": "xa-khac"}},
                   {"sig": {**doc["sig"], "expires_ms": doc["sig"]["expires_ms"] + 1}}):
        forged = parse(Command, json.dumps({**doc, **change}))
        assert verify_signature(forged, trusted(signer)) == Refusal.bad_signature


def test_verify_names_what_is_wrong(signer: Signer, tmp_path: Path):
    cmd = Command(kind=CommandKind.volume, volume=3)
    assert verify_signature(received(cmd), trusted(signer)) == Refusal.unsigned
    other = Signer(tmp_path / "other").sign(cmd, "xa", Target.all, None, 60)
    assert verify_signature(received(other), trusted(signer)) == Refusal.unknown_key
    doc = json.loads(signer.sign(cmd, "xa", Target.all, None, 60).to_bytes())
    doc["sig"]["signature"] = "!!not base64!!"
    assert verify_signature(parse(Command, json.dumps(doc)), trusted(signer)) == (
        Refusal.bad_signature)
    doc["sig"]["signature"] = ""
    assert verify_signature(parse(Command, json.dumps(doc)), trusted(signer)) == (
        Refusal.unsigned)


def test_signing_leaves_the_original_alone_and_plans_compare_by_fields(signer: Signer):
    cmd = Command(kind=CommandKind.stop)
    signed = signer.sign(cmd, "xa", Target.node, "n1", 60)
    assert cmd.sig is None and signed.sig is not None and signed.id == cmd.id
    plan = signer.sign(Plan(node="n1", version=4), "xa", Target.node, "n1", 60)
    assert received(plan) == plan


# --------------------------------------------------------------------------- keys, sequence
def test_key_files_are_private_and_rotation_trusts_two_keys_then_one(tmp_path: Path):
    folder = KeyFolder(tmp_path / "secrets" / "signing")
    first = folder.public_keys()
    assert len(first) == 1
    assert stat.S_IMODE((folder.root / signing.CURRENT).stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.root.stat().st_mode) == 0o700
    with pytest.raises(KeyFolderError):
        folder.finish()
    folder.rotate()
    assert folder.rotate() and len(folder.public_keys()) == 2  # rotate twice: one next key
    assert stat.S_IMODE((folder.root / signing.NEXT).stat().st_mode) == 0o600
    upcoming = folder.public_keys()[1]
    folder.finish()
    assert folder.public_keys() == [upcoming]


def test_a_running_signer_follows_a_finished_rotation(tmp_path: Path):
    signer = Signer(tmp_path)
    before = signer.key_id
    signer.folder.rotate()
    assert signer.key_id == before  # the next key does not sign before the finish
    signer.folder.finish()
    assert signer.key_id != before
    assert signer.sign(Command(kind=CommandKind.stop), "xa", Target.all, None, 1).sig.key_id \
        == signer.key_id  # type: ignore[union-attr]


def test_the_sequence_rises_across_restarts_even_when_the_clock_steps_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "sequence"
    now = [2_000_000_000 * 10**9]
    monkeypatch.setattr(signing.time, "time_ns", lambda: now[0])
    clock = SequenceClock(path)
    a, b = clock.next(), clock.next()
    assert b == a + 1
    now[0] -= 3600 * 10**9  # an hour back (a wrong NTP step corrected)
    restarted = SequenceClock(path)
    assert restarted.next() > b


# --------------------------------------------------------------------------- the node's gate
def gate_and_sign(tmp_path: Path, now_ms: int | None = None):  # type: ignore[no-untyped-def]
    signer = Signer(tmp_path / "key")
    store = NodeStore(tmp_path / "node.sqlite3")
    kw = {"now_ms": lambda: now_ms} if now_ms is not None else {}
    gate = Gate("n1", "xa", ["z1"], signer.folder.public_keys(), store, **kw)
    return gate, signer, store


def test_the_gate_checks_address_expiry_order_and_the_plan_version(tmp_path: Path):
    gate, signer, _ = gate_and_sign(tmp_path)
    cmd = Command(kind=CommandKind.stop)
    ok = received(signer.sign(cmd, "xa", Target.zone, "z1", 60))
    assert gate.admit_command(ok, "t")
    assert not gate.admit_command(ok, "t")  # the same again: dropped quietly
    assert gate.counts() == {}
    cases = {
        Refusal.wrong_target: [signer.sign(cmd, "xa", Target.zone, "z2", 60),
                               signer.sign(cmd, "xa", Target.node, "n2", 60),
                               signer.sign(cmd, "xa", Target.all, "n1", 60)],
        Refusal.wrong_commune: [signer.sign(cmd, "xb", Target.all, None, 60)],
        Refusal.expired: [signer.sign(cmd, "xa", Target.all, None, -1)],
    }
    for reason, messages in cases.items():
        for message in messages:
            assert not gate.admit_command(received(message), "t")
        assert gate.counts()[reason] == len(messages)
    older = received(signer.sign(cmd, "xa", Target.node, "n1", 60))
    newer = received(signer.sign(cmd, "xa", Target.node, "n1", 60))
    assert gate.admit_command(newer, "t") and not gate.admit_command(older, "t")
    assert gate.counts()[Refusal.replayed] == 1
    # plans: a version past the signing time's bound is refused, one within it is taken
    poisoned = received(signer.sign(Plan(node="n1", version=MAX_INT64), "xa", Target.node,
                                    "n1", 60))
    assert not gate.admit_plan(poisoned)  # type: ignore[arg-type]
    assert gate.counts()[Refusal.version_ahead] == 1
    real = signer.sign(Plan(node="n1", version=1), "xa", Target.node, "n1", 60)
    assert real.sig is not None
    edge = received(real.model_copy(update={"version": real.sig.signed_ms}))
    edge_signed = received(signer.sign(Plan(node="n1", version=real.sig.signed_ms
                                            + PLAN_VERSION_LEAD_MS), "xa", Target.node,
                                       "n1", 60))
    assert not gate.admit_plan(edge)  # type: ignore[arg-type]  # changed after signing
    assert gate.admit_plan(edge_signed)  # type: ignore[arg-type]


def test_a_node_with_no_trusted_key_refuses_everything(tmp_path: Path):
    signer = Signer(tmp_path / "key")
    gate = Gate("n1", "xa", [], [], NodeStore(tmp_path / "n.sqlite3"))
    assert not gate.admit_command(received(signer.sign(Command(kind=CommandKind.stop), "xa",
                                                       Target.all, None, 60)), "t")
    assert gate.counts() == {Refusal.unknown_key: 1}


# --------------------------------------------------------------------------- config, provision
def test_provisioning_creates_the_key_and_writes_its_public_half_into_each_node(
        tmp_path: Path):
    keys = tmp_path / "controller-data" / "secrets" / "signing"
    fleet = provision(EXAMPLES, tmp_path / "fleet", 1883, signing_dir=keys)
    expected = KeyFolder(keys).public_keys()
    for path in fleet.node_configs.values():
        assert load_node_config(path).trusted_keys == expected
        assert "PRIVATE" not in path.read_text()
    # the signing key stays out of the fleet folder (its *.key files are TLS keys)
    assert not [p for p in (tmp_path / "fleet").rglob("*.key")
                if p.name in ("current.key", "next.key")]
    for path in fleet.node_configs.values():
        assert sorted(p.name for p in path.parent.glob("*.key")) == ["client.key"]


def test_a_node_config_refuses_a_key_that_is_not_ed25519():
    base = yaml.safe_load((EXAMPLES / "node-1.yaml").read_text())
    with pytest.raises(ConfigError, match="trusted_keys"):
        parse_node_config({**base, "trusted_keys": ["c2hvcnQ="]})


def test_the_link_publishes_nothing_unsigned():
    link = MqttLink("127.0.0.1", 1, "u", None, "c", "g")
    with pytest.raises(NotSigned):
        link.publish_plan("xa", Plan(node="n1", version=1))
