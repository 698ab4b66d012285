"""The MQTT contract: topics round-trip, payloads validate, bad ones say why."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mqtt_contract as contract
from mqtt_contract import (
    ContractError,
    MediaRef,
    Plan,
    PlanItem,
    PlaybackReport,
    check_segment,
    describe,
    parse,
    parse_topic,
)

SHA = "ab" * 32


def test_topics_round_trip() -> None:
    c = "xa-demo"
    assert parse_topic(contract.PLAN.topic(c, node="node-1")).model_dump(exclude_none=True) == {
        "spec_name": "plan", "commune": "xa-demo", "node": "node-1"}
    assert parse_topic(contract.MEDIA_REQUEST.topic(c, node="n")).kind == "media_request"
    assert parse_topic(contract.ZONE_CMD.topic(c, zone="thon-1")).zone == "thon-1"
    assert parse_topic(contract.ALL_CMD.topic(c)).spec is contract.ALL_CMD
    chunk = parse_topic(contract.NODE_MEDIA.topic(c, node="n", sha256=SHA, index=7))
    assert (chunk.kind, chunk.sha256, chunk.chunk, chunk.node) == ("node_media", SHA, 7, "n")
    assert parse_topic(contract.MEDIA.topic(c, sha256=SHA, index=0)).spec is contract.MEDIA


def test_every_declared_topic_round_trips_and_no_two_overlap() -> None:
    values = {"node": "node-1", "zone": "thon-1", "sha256": SHA, "index": 3}
    for spec in contract.TOPICS:
        topic = spec.topic("xa-demo", **{p: values[p] for p in spec.params})
        assert parse_topic(topic).spec is spec, spec.name
        assert [s.name for s in contract.TOPICS if s.match(topic.split("/")[3:]) is not None
                ] == [spec.name]


def test_builders_refuse_parameters_that_would_break_the_topic() -> None:
    with pytest.raises(ContractError):
        contract.PLAN.topic("xa-demo", node="a/b")
    with pytest.raises(ContractError):
        contract.MEDIA.topic("xa-demo", sha256="zz", index=1)
    with pytest.raises(ContractError):
        contract.PLAN.topic("xa-demo")  # a parameter missing


def test_messages_carry_the_declared_qos_and_retain() -> None:
    plan = Plan(node="n1", version=1)
    msg = contract.PLAN.message("xa-demo", plan, node="n1")
    assert (msg.qos, msg.retain, msg.payload) == (1, True, plan.to_bytes())
    tele = contract.TELEMETRY.message("xa-demo", b"{}", node="n1")
    assert (tele.qos, tele.retain) == (0, False)


def test_subscriptions_follow_the_declarations() -> None:
    subs = dict(contract.node_subscriptions("xa-demo", "n1", ["thon-1", "thon-2"]))
    root = "loaxa/v1/xa-demo"
    assert set(subs) == {f"{root}/node/n1/plan", f"{root}/node/n1/cmd", f"{root}/all/cmd",
                         f"{root}/zone/thon-1/cmd", f"{root}/zone/thon-2/cmd",
                         f"{root}/media/+/+", f"{root}/zone/thon-1/media/+/+",
                         f"{root}/zone/thon-2/media/+/+", f"{root}/node/n1/media/+/+",
                         f"{root}/live", f"{root}/zone/thon-1/live", f"{root}/zone/thon-2/live"}
    assert subs[f"{root}/live"] == 0  # live frames: a late frame is useless
    ctl = dict(contract.controller_subscriptions("grp"))
    shared = "$share/grp/loaxa/v1/+/node/+/"
    for split in ("alert", "playback", "media/request"):  # one replica handles each
        assert shared + split in ctl
    assert ctl[shared + "telemetry"] == 0
    for everyone in ("status", "reply"):  # retained state; answers to whoever asked
        assert f"loaxa/v1/+/node/+/{everyone}" in ctl
    assert all("/node/+/" in f for f in ctl)


def test_docs_topic_table_matches_the_contract() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "mqtt.md").read_text()
    table = doc.split("<!-- topic-table -->\n", 1)[1].split("<!-- /topic-table -->", 1)[0]
    assert table == contract.topic_table(), "docs/mqtt.md's topic table is out of date"


def test_dispatcher_validates_and_drops_without_raising() -> None:
    seen: list[tuple[str, object]] = []
    d = contract.Dispatcher("test")
    d.on(contract.PLAN, lambda info, plan, props: seen.append((info.node, plan.version)))
    topic = contract.PLAN.topic("xa-demo", node="n1")
    assert d.dispatch(topic, Plan(node="n1", version=4).to_bytes())
    assert not d.dispatch(topic, b"not json")
    assert not d.dispatch(contract.ALL_CMD.topic("xa-demo"), b"{}")  # no handler
    assert not d.dispatch("x/y", b"")
    assert seen == [("n1", 4)] and d.dropped == 3


@pytest.mark.parametrize("topic", ["x/y", "loaxa/v2/c/node/n/plan", "loaxa/v1/c/media/zz/1",
                                   f"loaxa/v1/c/media/{SHA}/x", "loaxa/v1/c/bogus/1"])
def test_foreign_topics_are_refused(topic: str) -> None:
    with pytest.raises(ContractError):
        parse_topic(topic)


@pytest.mark.parametrize("bad", ["", "Node", "a/b", "a+b", "#", "x" * 64, "-a"])
def test_ids_that_would_break_topics_are_refused(bad: str) -> None:
    with pytest.raises(ContractError):
        check_segment(bad, "node")


def test_plan_round_trip_and_chunk_count() -> None:
    ref = MediaRef(sha256=SHA, size=70_000, duration_s=12.5)
    assert ref.chunks == 3
    plan = Plan(node="node-1", version=5, items=[
        PlanItem(id="a1", media=ref, start_at=datetime(2026, 1, 1, tzinfo=UTC))])
    assert parse(Plan, plan.to_bytes()) == plan


@pytest.mark.parametrize("payload,where", [
    (b"{}", "node"), (b"not json", "Plan"),
    (b'{"v":2,"node":"n","version":1}', "v"),
    (b'{"node":"n","version":-1}', "version"),
])
def test_bad_payloads_say_what_is_wrong(payload: bytes, where: str) -> None:
    with pytest.raises(ContractError, match=where):
        parse(Plan, payload)


@pytest.mark.parametrize("camera,refused", [
    ("n\x00", True), ("\\\x00", True), ("\\u0000", False), ("\\\\u0000", False),
])
def test_a_nul_character_is_malformed_and_a_backslash_before_u0000_is_not(
        camera: str, refused: bool) -> None:
    """PostgreSQL refuses NUL in text, so it is dropped at parse; the check reads JSON
    escapes exactly, so a text that only spells out a NUL is kept."""
    data = json.dumps({"id": "a1", "node": "n1", "camera": camera, "kind": "motion",
                       "at": "2026-12-03T10:00:00Z", "confidence": 0.5})
    if refused:
        with pytest.raises(ContractError, match="NUL"):
            parse(contract.Alert, data)
    else:
        assert parse(contract.Alert, data).camera == camera


@given(st.binary(max_size=200))
def test_parse_never_raises_anything_but_contract_error(data: bytes) -> None:
    with contextlib.suppress(ContractError):
        parse(PlaybackReport, data)


def test_schemas_are_described_for_docs() -> None:
    assert {"Plan", "Command", "Alert", "PlaybackReport"} <= set(describe())


def _session() -> contract.LiveSession:
    import base64

    return contract.LiveSession(id="ab" * 16, key=base64.b64encode(b"k" * 32).decode())


def test_live_frames_round_trip_and_a_wrong_key_or_a_changed_byte_is_refused() -> None:
    spec = _session()
    frame = contract.LiveFrame(spec.id, 7, 1_764_000_000_123, 40, (b"\x01" * 60, b"\x02" * 61))
    data = frame.pack(spec.key_bytes())
    assert contract.LiveFrame.session_of(data) == spec.id
    assert contract.LiveFrame.unpack(data, spec.key_bytes()) == frame
    assert frame.duration_ms == 80
    with pytest.raises(ContractError, match="tag"):
        contract.LiveFrame.unpack(data, b"x" * 32)
    for at in (0, 5, 30, len(data) - 20, len(data) - 1):
        changed = bytearray(data)
        changed[at] ^= 0x40
        with pytest.raises(ContractError):
            contract.LiveFrame.unpack(bytes(changed), spec.key_bytes())
    with pytest.raises(ContractError):
        contract.LiveFrame.unpack(data[:20], spec.key_bytes())
    with pytest.raises(ContractError, match="too big"):
        contract.LiveFrame(spec.id, 1, 1, 40, (b"x" * 9000, b"y" * 9000)).pack(b"k" * 32)


def test_a_live_session_is_bounded() -> None:
    import base64

    key = base64.b64encode(b"k" * 32).decode()
    with pytest.raises(ValueError):
        contract.LiveSession(id="ab" * 16, key=base64.b64encode(b"short").decode())
    with pytest.raises(ValueError):
        contract.LiveSession(id="ab" * 16, key=key, sample_rate=44100)
    with pytest.raises(ValueError):
        contract.LiveSession(id="ab" * 16, key=key, latency_ms=60_000)
    cmd = contract.Command(kind=contract.CommandKind.live_start, live=_session())
    assert parse(contract.Command, cmd.to_bytes()).live == cmd.live


@given(st.binary(max_size=300))
def test_any_bytes_on_a_live_topic_are_refused_cleanly(data: bytes) -> None:
    with contextlib.suppress(ContractError):
        contract.LiveFrame.unpack(data, b"k" * 32)
        pytest.fail("random bytes passed the tag")
