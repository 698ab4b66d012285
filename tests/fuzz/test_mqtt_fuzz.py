"""Hypothesis feeds every inbound MQTT message of both sides through the real handlers.

Node side: a real :class:`~edge.agent.EdgeAgent` (its dispatcher, plan keeper, scheduler,
command handler, media fetcher and cache, its SQLite store, on its own loop; the link is
not connected, so what it would send goes nowhere). Controller side: the real
:class:`~controller.runtime.Runtime` handlers with a real, migrated SQLite database.
Topics and who sends them come from the contract's TOPICS.

Each message is valid-shaped (generated from the payload's JSON schema,
tests/fuzz/schema_strategy.py), a valid-shaped one with a field broken, random JSON, or random
bytes. The property: the message is handled, or dropped as malformed (a ContractError,
logged as a warning); a handler never fails with any other exception (the dispatcher's
"its handler failed" log), and the next valid message is still handled. Bounded: a few
hundred examples per side (800 by default, ``LOAXA_FUZZ_EXAMPLES``; about 40 s in all on
a loaded 2-core machine), no example database kept.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mqtt_contract as contract
from firmware_config.broker import free_port
from firmware_config.provision import provision
from mqtt_contract import Account, Command, CommandKind, Status, TopicSpec
from tests.conftest import EXAMPLES
from tests.fuzz.schema_strategy import ANY_JSON, from_model_schema
from tests.trust_helpers import signed_command, signer_for

EXAMPLES_PER_SIDE = int(os.environ.get("LOAXA_FUZZ_EXAMPLES", "800"))
COMMUNE = "xa-demo"
NODE = "node-1"
FUZZ = settings(max_examples=EXAMPLES_PER_SIDE, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])

JSON = ANY_JSON
"""Any JSON value (for fields given the wrong type)."""
BIG_INTS = st.sampled_from([-1, 0, 2**31, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63) - 1])


class HandlerFailures(logging.Handler):
    """Counts the dispatcher's "its handler failed" records: each one is a finding."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "handler failed" in record.getMessage():
            exc = record.exc_info[1] if record.exc_info else None
            self.found.append(f"{record.getMessage()}: {exc!r}"[:300])


@pytest.fixture
def failures():  # type: ignore[no-untyped-def]
    handler = HandlerFailures()
    logger = logging.getLogger("loaxa.contract")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def schema_of(spec: TopicSpec) -> dict[str, Any]:
    assert spec.payload is not None
    return spec.payload.model_json_schema()


def payloads(spec: TopicSpec, node_field: str | None) -> st.SearchStrategy[tuple[str, bytes]]:
    """(kind, bytes) for one JSON topic: valid-shaped, one field broken, random JSON,
    random bytes. ``node_field`` sets ``node`` to the receiving side's node half the time
    (so deep handling is reached, not only the "not yours" refusal)."""
    shaped = from_model_schema(schema_of(spec))

    def own(value: dict) -> dict:
        if node_field and isinstance(value, dict):
            value = {**value, "node": node_field}
        return value

    valid = st.one_of(shaped, shaped.map(own))
    fields = list(schema_of(spec).get("properties", {}))
    broken = st.tuples(valid, st.sampled_from(fields or ["v"]), JSON | BIG_INTS).map(
        lambda t: {**t[0], t[1]: t[2]} if isinstance(t[0], dict) else t[0])
    return st.one_of(
        valid.map(lambda v: ("valid-shaped", json.dumps(v).encode())),
        broken.map(lambda v: ("one field broken", json.dumps(v).encode())),
        JSON.map(lambda v: ("random JSON", json.dumps(v).encode())),
        st.binary(max_size=300).map(lambda b: ("random bytes", b)),
    )


# --------------------------------------------------------------------------- node side
def node_messages() -> st.SearchStrategy[tuple[str, str, bytes]]:
    """(topic, kind, payload) for every topic a node receives (sent by the controller)."""
    options = []
    for spec in contract.TOPICS:
        if spec.sender != Account.controller:
            continue
        params: dict[str, Any] = {}
        if "node" in spec.params:
            params["node"] = NODE
        if "zone" in spec.params:
            params["zone"] = "thon-1"
        if spec.payload is None and "sha256" not in spec.params:  # a live frame
            framed = st.binary(max_size=600).map(lambda b: b"LX\x01" + b)
            options.append(st.tuples(st.just(spec.topic(COMMUNE, **params)), st.just("live"),
                                     st.one_of(st.binary(max_size=600), framed)))
        elif spec.payload is None:  # binary media chunk
            topic = st.tuples(st.sampled_from(["ab" * 32, "0" * 64]),
                              st.integers(0, 20_000)).map(
                lambda t, s=spec, p=params: s.topic(COMMUNE, sha256=t[0], index=t[1], **p))
            options.append(st.tuples(topic, st.just("chunk"), st.binary(max_size=2048)))
        else:
            options.append(payloads(spec, NODE).map(
                lambda kp, s=spec, p=params: (s.topic(COMMUNE, **p), kp[0], kp[1])))
    return st.one_of(options)


@pytest.fixture
def agent(tmp_path: Path):  # type: ignore[no-untyped-def]
    from edge.agent import EdgeAgent
    from edge.audio_output import FileSink
    from firmware_config.schema import load_node_config

    fleet = provision(EXAMPLES, tmp_path / "fleet", free_port())
    cfg = load_node_config(fleet.node_configs[NODE])
    cfg = cfg.model_copy(update={"storage_dir": tmp_path / "node", "media_wait_s": 1.0})
    node = EdgeAgent(cfg, output=FileSink(tmp_path / "sink"))
    node.fleet = fleet  # the test signs its valid commands with the fleet's key
    node.loop.start()
    node.loop.run_in_loop(lambda: (node.plans.restore(), node.scheduler.start()))
    yield node
    node.loop.run_in_loop(node.scheduler.close)
    node.loop.stop()
    node.store.close()


def test_node_survives_every_inbound_message(agent, failures) -> None:  # type: ignore[no-untyped-def]
    tried: Counter[str] = Counter()
    handled: Counter[str] = Counter()
    volumes = iter(range(10**9))
    signer = signer_for(agent.fleet)

    @FUZZ
    @given(msg=node_messages())
    def run(msg: tuple[str, str, bytes]) -> None:
        topic, kind, payload = msg
        tried[kind] += 1
        if agent.loop.run_in_loop(lambda: agent.dispatcher.dispatch(topic, payload)):
            handled[f"{kind} on {topic.split('/')[-2 if kind == 'chunk' else -1]}"] += 1
        assert agent.loop._thread.is_alive()  # noqa: SLF001
        volume = next(volumes) % 101  # the next valid message is still handled
        command = signed_command(signer, Command(kind=CommandKind.volume, volume=volume),
                                 to=NODE).to_bytes()
        assert agent.loop.run_in_loop(lambda: agent.dispatcher.dispatch(
            contract.NODE_CMD.topic(COMMUNE, node=NODE), command))
        assert agent.volume() == volume

    started = time.monotonic()
    run()
    print(f"\nnode fuzz: {sum(tried.values())} messages in {time.monotonic() - started:.1f} s"
          f" {dict(tried)}; handled {dict(handled)}; dropped {agent.dropped_messages};"
          f" findings {failures.found}")
    assert failures.found == []


# --------------------------------------------------------------------------- controller
def controller_messages() -> st.SearchStrategy[tuple[str, str, bytes]]:
    """(topic, kind, payload) for every topic a controller receives (sent by nodes)."""
    return st.one_of([
        payloads(spec, NODE).map(
            lambda kp, s=spec: (s.topic(COMMUNE, node=NODE), kp[0], kp[1]))
        for spec in contract.TOPICS if spec.sender == Account.node
    ])


@pytest.fixture
def runtime(tmp_path: Path):  # type: ignore[no-untyped-def]
    from controller.db import migrate
    from controller.runtime import Runtime
    from controller.services import fleet as fleet_service
    from controller.settings import Settings

    fleet = provision(EXAMPLES, tmp_path / "fleet", free_port())
    rt = Runtime(Settings(data_dir=tmp_path / "controller", mqtt_port=free_port()))
    migrate(rt.db.url)
    with rt.db.session() as s:
        fleet_service.register_fleet(s, fleet.root / "nodes")
    yield rt  # the link is never started: handlers are fed directly, as paho would
    rt.db.dispose()


def test_controller_survives_every_inbound_message(runtime, failures) -> None:  # type: ignore[no-untyped-def]
    from controller.models import Node

    tried: Counter[str] = Counter()
    handled: Counter[str] = Counter()
    flips = iter(range(10**9))
    status_topic = contract.STATUS.topic(COMMUNE, node=NODE)

    def online() -> bool:
        """The node's stored state: its online flag, and (checked here) that what the
        API will serve from it is strict JSON (a NaN telemetry value once was not)."""
        with runtime.db.session() as s:
            node = s.query(Node).filter_by(commune=COMMUNE, node_id=NODE).one()
            json.dumps(node.telemetry, allow_nan=False)
            return node.online

    @FUZZ
    @given(msg=controller_messages())
    def run(msg: tuple[str, str, bytes]) -> None:
        topic, kind, payload = msg
        tried[kind] += 1
        if runtime.link.dispatcher.dispatch(topic, payload):
            handled[f"{kind} on {topic.rsplit('/', 1)[-1]}"] += 1
        state = next(flips) % 2 == 0  # the next valid message is still handled
        assert runtime.link.dispatcher.dispatch(
            status_topic, Status(node=NODE, online=state).to_bytes())
        runtime.ingest_writer.flush()  # reports are written in batches: this one now
        assert online() is state

    started = time.monotonic()
    run()
    print(f"\ncontroller fuzz: {sum(tried.values())} messages in "
          f"{time.monotonic() - started:.1f} s {dict(tried)}; handled {dict(handled)}; "
          f"dropped {runtime.link.dropped_messages}; findings {failures.found}")
    assert failures.found == []
