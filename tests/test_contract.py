"""The MQTT contract: topics round-trip, payloads validate, bad ones say why."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mqtt_contract import (
    ContractError,
    MediaRef,
    Plan,
    PlanItem,
    PlaybackReport,
    Topics,
    check_segment,
    describe,
    parse,
    parse_topic,
)

SHA = "ab" * 32


def test_topics_round_trip() -> None:
    t = Topics("xa-demo")
    assert parse_topic(t.plan("node-1")).model_dump(exclude_none=True) == {
        "commune": "xa-demo", "scope": "node", "target": "node-1", "kind": "plan"}
    assert parse_topic(t.media_request("n")).kind == "media/request"
    assert parse_topic(t.zone_cmd("thon-1")).scope == "zone"
    assert parse_topic(t.all_cmd()).scope == "all"
    chunk = parse_topic(t.node_media_chunk("n", SHA, 7))
    assert (chunk.kind, chunk.sha256, chunk.chunk, chunk.target) == ("media", SHA, 7, "n")
    assert parse_topic(t.media_chunk(SHA, 0)).scope == "media"


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


@given(st.binary(max_size=200))
def test_parse_never_raises_anything_but_contract_error(data: bytes) -> None:
    with contextlib.suppress(ContractError):
        parse(PlaybackReport, data)


def test_schemas_are_described_for_docs() -> None:
    assert {"Plan", "Command", "Alert", "PlaybackReport"} <= set(describe())
