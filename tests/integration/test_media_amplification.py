"""A node's media request cannot make the controller send without bound (issue 10).

Real broker with the project's ACL, the real controller runtime and SQLite; the attacker
is node-1's own account, listening on the only media topic it may read, counting bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time

import mqtt_contract as contract
from controller.models import Announcement
from mqtt_contract import MediaRequest
from tests.conftest import wait_for
from tests.integration.test_bad_input_and_auth import announce_online, connect, node_password

COMMUNE = "xa-demo"
CHUNK = contract.MEDIA_CHUNK_SIZE


class Counter:
    """Bytes node-1 receives on its own media topic."""

    def __init__(self) -> None:
        self.bytes = self.messages = 0
        self.lock = threading.Lock()

    def __call__(self, client, userdata, msg) -> None:  # type: ignore[no-untyped-def]
        with self.lock:
            self.bytes += len(msg.payload)
            self.messages += 1

    def settle(self, quiet_s: float = 1.0, limit_s: float = 20.0) -> int:
        """Wait until nothing has come for ``quiet_s``; the bytes so far."""
        deadline, last = time.monotonic() + limit_s, -1
        while time.monotonic() < deadline and last != self.bytes:
            last = self.bytes
            time.sleep(quiet_s)
        return self.bytes


def add_media(runtime, size: int, seed: int) -> str:  # type: ignore[no-untyped-def]
    """A stored clip and the announcement that holds it (as the content pipeline leaves)."""
    data = hashlib.sha256(str(seed).encode()).digest() * (size // 32)
    sha, stored = runtime.media.add_bytes(data, "mp3")
    with runtime.db.session() as s:
        s.add(Announcement(title=f"clip {seed}", text="x", media_sha256=sha,
                           media_size=stored, media_codec="mp3", duration_s=10.0))
    return sha


def listening_node(broker):  # type: ignore[no-untyped-def]
    counter = Counter()
    client = connect(broker, "node-1", node_password(broker, "node-1"))
    client.on_message = counter
    client.subscribe(contract.NODE_MEDIA.filter(COMMUNE, node="node-1"), 1)
    time.sleep(0.5)
    return client, counter


def request(client, sha: str, chunks: list[int]) -> None:  # type: ignore[no-untyped-def]
    payload = json.dumps({"v": 1, "node": "node-1", "sha256": sha, "chunks": chunks}).encode()
    client.publish(contract.MEDIA_REQUEST.topic(COMMUNE, node="node-1"), payload,
                   qos=1).wait_for_publish(5)


def test_one_chunk_listed_thousands_of_times_is_sent_once(controller, broker):
    sha = add_media(controller.runtime, 4 * CHUNK, seed=1)
    client, counter = listening_node(broker)
    request(client, sha, [0] * 3_000)  # 18 KB of request, one chunk meant
    time.sleep(1.0)
    request(client, sha, [0] * 30_000)  # more entries than any media has: malformed
    got = counter.settle()
    print(f"amplification: 3,000 x chunk 0, then 30,000 x chunk 0 -> {got:,} bytes")
    assert got == CHUNK  # before: 3,000 chunks (98 MB), then 30,000 more
    client.loop_stop()


def test_a_node_flooding_requests_gets_no_more_than_its_budget(controller, broker):
    from controller.media_store import RESEND_BURST_BYTES, RESEND_BYTES_PER_S

    shas = [add_media(controller.runtime, 32 * CHUNK, seed=i) for i in range(16)]  # 1 MB each
    client, counter = listening_node(broker)
    start = time.monotonic()
    while time.monotonic() - start < 4.0:
        for sha in shas:
            request(client, sha, [])  # "everything", again and again
    got = counter.settle()
    elapsed = time.monotonic() - start
    print(f"amplification: 16 clips asked for again and again for 4 s -> {got / 1e6:.1f} MB")
    assert got <= RESEND_BURST_BYTES + RESEND_BYTES_PER_S * elapsed + CHUNK
    client.loop_stop()


def test_random_media_requests_neither_grow_memory_nor_hold_the_link(controller, broker):
    runtime = controller.runtime
    client = connect(broker, "node-1", node_password(broker, "node-1"))
    before = len(runtime.resends)
    topic = contract.MEDIA_REQUEST.topic(COMMUNE, node="node-1")
    start = time.monotonic()
    for _ in range(3000):
        sha = os.urandom(32).hex()
        client.publish(topic, MediaRequest(node="node-1", sha256=sha).to_bytes(), qos=1)
    announce_online(client, controller, "node-1", "a status after 3,000 random requests")
    took = time.monotonic() - start
    print(f"amplification: 3,000 random sha256 requests, then a status: {took:.1f} s")
    assert len(runtime.resends) == before  # nothing remembered for media that is not there
    assert took < 8
    wait_for(lambda: True, 1)
    client.loop_stop()
