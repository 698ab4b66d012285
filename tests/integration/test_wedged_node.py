"""A node that cannot be wedged, over the wire (issue 10): a real node agent, the real
broker with the project's ACL, the controller's account publishing as the controller does.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime

import pytest

import edge.media as media_module
import edge.scheduler as scheduler_module
import mqtt_contract as contract
from mqtt_contract import Command, CommandKind, MediaRef, Plan, PlanItem, Priority
from tests.conftest import wait_for
from tests.edge.test_parts import tone
from tests.integration.test_bad_input_and_auth import connect
from tests.trust_helpers import signed_command, signed_plan, signer_for

COMMUNE = "xa-demo"


def test_an_emergency_whose_media_never_comes_does_not_silence_the_node(
        broker, start_node, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: the emergency stayed queued and the next plan item was skipped "busy or
    down" while nothing played, until a restart."""
    monkeypatch.setattr(scheduler_module, "LATE_GRACE_S", 3.0)
    agent = start_node("node-1")
    ctl = connect(broker, broker.controller_user, broker.controller_password)
    lost = MediaRef(sha256=hashlib.sha256(b"never sent").hexdigest(), size=90_000,
                    duration_s=5)
    signer = signer_for(broker)
    play = Command(kind=CommandKind.play, media=lost, item_id="khan-cap")
    ctl.publish(contract.NODE_CMD.topic(COMMUNE, node="node-1"),
                signed_command(signer, play, to="node-1").to_bytes(), 1).wait_for_publish(5)
    wait_for(lambda: agent.scheduler.item_state("khan-cap"), 10, what="the emergency queued")
    ref, path = tone(tmp_path / "tone.wav", 0.5)
    agent.loop.run_in_loop(lambda: agent.cache.put_file(ref, path))
    item = PlanItem(id="lich-1", media=ref, priority=Priority.ordinary,
                    ignore_quiet_hours=True,
                    start_at=datetime.fromtimestamp(time.time() + 1.5, UTC))
    ctl.publish(contract.PLAN.topic(COMMUNE, node="node-1"),
                signed_plan(signer, Plan(node="node-1", version=1, items=[item])).to_bytes(), 1,
                retain=True).wait_for_publish(5)
    wait_for(lambda: agent.scheduler.item_state("lich-1") == "finished", 20,
             what="the plan item to play while the emergency waits for its media")
    wait_for(lambda: agent.scheduler.item_state("khan-cap") == "failed", 20,
             what="the emergency given up after its grace")
    ctl.loop_stop()


def test_other_zones_media_fanned_out_to_the_node_does_not_stay(
        broker, start_node, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: every chunk of every commune-wide broadcast stayed in partial/ for ever."""
    monkeypatch.setattr(media_module, "UNNAMED_TTL_S", 1.0, raising=False)
    agent = start_node("node-1")
    ctl = connect(broker, broker.controller_user, broker.controller_password)
    data = b"\x07" * 200_000
    sha = hashlib.sha256(data).hexdigest()
    size = contract.MEDIA_CHUNK_SIZE
    for i in range(0, len(data), size):
        ctl.publish(contract.MEDIA.topic(COMMUNE, sha256=sha, index=i // size),
                    data[i:i + size], 1).wait_for_publish(5)
    partial = agent.config.storage_dir / "partial"

    def held() -> int:
        return sum(p.stat().st_size for p in partial.rglob("*") if p.is_file())

    wait_for(lambda: held() > 0, 10, what="the broadcast to reach the node")
    wait_for(lambda: held() == 0, 15, what="the unnamed chunks to be dropped")
    ctl.loop_stop()
