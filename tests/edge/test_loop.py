"""The node's event loop: what may wait for a quiet moment, and blocking work shared by
key. Both exist so that hundreds of simulated nodes on one loop start as each would on
its own CPU; on a Pi they change nothing but the order of work within a millisecond."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from edge.agent import wants_reply
from edge.loop import IDLE_MAX_DELAY_S, Reactor
from mqtt_contract import ALL_CMD, NODE_CMD, ZONE_CMD, parse_topic
from tests.conftest import wait_for


@pytest.fixture
def loop():  # type: ignore[no-untyped-def]
    reactor = Reactor("test-loop")
    reactor.start()
    yield reactor
    reactor.stop()


def test_blocking_jobs_with_one_key_run_once_and_answer_every_caller(loop: Reactor) -> None:
    runs, answers = [], []
    release = threading.Event()

    def decode() -> str:
        runs.append(1)
        release.wait(5)
        return "clip"

    def ask() -> None:
        for caller in range(5):
            loop.run_blocking(decode, lambda r, e, c=caller: answers.append((c, r, e)),
                              key="clip-v80")

    loop.run_in_loop(ask)
    release.set()
    wait_for(lambda: len(answers) == 5, 5, what="every caller answered")
    assert runs == [1]
    assert sorted(answers) == [(c, "clip", None) for c in range(5)]
    # once finished, the key is free: a later caller runs the job again
    loop.run_in_loop(lambda: loop.run_blocking(decode, lambda r, e: answers.append(r),
                                               key="clip-v80"))
    wait_for(lambda: len(answers) == 6, 5, what="the later caller answered")
    assert runs == [1, 1]


def test_a_failed_shared_job_reaches_every_caller(loop: Reactor) -> None:
    errors: list[BaseException | None] = []

    def broken() -> None:
        time.sleep(0.1)
        raise OSError("cannot decode")

    def ask() -> None:
        for _ in range(3):
            loop.run_blocking(broken, lambda r, e: errors.append(e), key="bad")

    loop.run_in_loop(ask)
    wait_for(lambda: len(errors) == 3, 5, what="every caller told")
    assert all(isinstance(e, OSError) for e in errors)


def test_idle_work_waits_for_the_sockets_to_go_quiet(loop: Reactor) -> None:
    """A burst of readable sockets (a command to every node of a process) is read first;
    the work queued for a quiet moment runs after it."""
    pairs = [socket.socketpair() for _ in range(20)]
    order: list[str] = []

    def readable(i: int, sock: socket.socket) -> None:
        sock.recv(16)
        order.append(f"read {i}")
        if i == 0:
            loop.call_when_idle(order.append, "report")

    def setup() -> None:
        for i, (a, _b) in enumerate(pairs):
            a.setblocking(False)
            loop.watch(a, lambda i=i, a=a: readable(i, a))
        for _a, b in pairs:
            b.send(b"x")

    loop.run_in_loop(setup)
    wait_for(lambda: "report" in order, 5, what="the idle work ran")
    assert order.index("report") == len(order) - 1
    assert len([o for o in order if o.startswith("read")]) == 20
    for a, b in pairs:
        loop.run_in_loop(lambda a=a: loop.unwatch(a))
        a.close()
        b.close()


def test_idle_work_runs_within_its_bound_on_a_loop_that_never_goes_quiet(
        loop: Reactor) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    ran: list[float] = []
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            b.send(b"x" * 64)
            time.sleep(0.001)

    def readable() -> None:
        with contextlib.suppress(BlockingIOError):
            a.recv(1 << 16)

    feeder = threading.Thread(target=flood, daemon=True)
    feeder.start()
    t0 = time.monotonic()
    loop.run_in_loop(lambda: (loop.watch(a, readable),
                              loop.call_when_idle(lambda: ran.append(time.monotonic()))))
    try:
        wait_for(lambda: ran, IDLE_MAX_DELAY_S + 3, what="the idle work ran")
        assert ran[0] - t0 <= IDLE_MAX_DELAY_S + 1.0
    finally:
        stop.set()
        feeder.join()
        loop.run_in_loop(lambda: loop.unwatch(a))
        a.close()
        b.close()


def test_only_a_nodes_own_commands_and_those_that_ask_get_a_reply() -> None:
    class Asked:
        ResponseTopic = "loaxa/v1/xa-demo/node/node-1/reply"

    node = parse_topic(NODE_CMD.topic("xa-demo", node="node-1"))
    zone = parse_topic(ZONE_CMD.topic("xa-demo", zone="thon-1"))
    everyone = parse_topic(ALL_CMD.topic("xa-demo"))
    assert node is not None and zone is not None and everyone is not None
    assert wants_reply(node, None)
    assert not wants_reply(zone, None)
    assert not wants_reply(everyone, object())
    assert wants_reply(everyone, Asked())
