"""The node's store and media cache: versions, idempotence, resumable verified chunks."""

from __future__ import annotations

import hashlib
from pathlib import Path

from edge.media_cache import MediaCache
from edge.store import NodeStore
from mqtt_contract import MediaRef, Plan


def test_the_plan_and_the_last_sequences_taken_survive_a_restart(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "n.sqlite3")
    store.save_plan(Plan(node="n", version=2))
    assert store.accept_seq("plan/k/node/n", 10) is None
    assert store.accept_seq("plan/k/node/n", 9) == 10  # older: nothing changes
    assert store.accept_seq("cmd/k/all/-", 3) is None  # another stream
    store.close()
    store = NodeStore(tmp_path / "n.sqlite3")
    assert store.load_plan().version == 2  # type: ignore[union-attr]
    assert store.accept_seq("plan/k/node/n", 11) == 10


def test_outbox_keeps_messages_until_acknowledged(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "n.sqlite3")
    store.enqueue("r1", "t", b"a")
    store.enqueue("r1", "t", b"a")  # the same report twice is kept once
    store.enqueue("r2", "t", b"b")
    pending = store.pending()
    assert [m.msg_id for m in pending] == ["r1", "r2"]
    store.acknowledge(pending[0].seq)
    store.close()
    assert [m.msg_id for m in NodeStore(tmp_path / "n.sqlite3").pending()] == ["r2"]


def ref_for(data: bytes, chunk: int) -> MediaRef:
    return MediaRef(sha256=hashlib.sha256(data).hexdigest(), size=len(data), duration_s=1,
                    chunk_size=chunk)


def test_chunks_in_any_order_assemble_and_verify(tmp_path: Path) -> None:
    data = bytes(range(256)) * 100
    ref = ref_for(data, 4096)
    cache = MediaCache(tmp_path)
    for i in reversed(range(ref.chunks)):
        assert cache.complete(ref) is None
        cache.add_chunk(ref.sha256, i, data[i * 4096:(i + 1) * 4096])
        cache.add_chunk(ref.sha256, i, data[i * 4096:(i + 1) * 4096])  # duplicate
    path = cache.complete(ref)
    assert path is not None and path.read_bytes() == data
    assert cache.missing_chunks(ref) == []


def test_a_resumed_download_keeps_received_chunks(tmp_path: Path) -> None:
    data = b"x" * 40_000
    ref = ref_for(data, 4096)
    MediaCache(tmp_path).add_chunk(ref.sha256, 3, data[3 * 4096:4 * 4096])
    assert 3 not in MediaCache(tmp_path).missing_chunks(ref)  # after a "restart"


def test_corrupt_media_is_discarded_and_asked_for_again(tmp_path: Path) -> None:
    data = b"y" * 20_000
    ref = ref_for(data, 4096)
    cache = MediaCache(tmp_path)
    for i in range(ref.chunks):
        cache.add_chunk(ref.sha256, i, b"z" * 4096 if i == 2 else data[i * 4096:(i + 1) * 4096])
    assert cache.complete(ref) is None
    assert not cache.has(ref.sha256)
    assert cache.missing_chunks(ref) == list(range(ref.chunks))


def test_old_outcomes_are_forgotten_only_when_no_plan_holds_them(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "n.sqlite3")
    store.set_item_states({"gone": "finished", "still-planned": "finished"})
    assert store.forget_item_states({"still-planned"}, older_than=9e12) == ["gone"]
    assert store.item_states() == {"still-planned": "finished"}
