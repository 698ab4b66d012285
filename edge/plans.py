"""Plans: the node's desired schedule, applied only when newer than the one it holds.

"Newer" is the signature's order (edge/trust.py): a plan signed after the one held
replaces it, even with a lower version. The controller's versions only grow, so for real
plans both orders agree; should a node ever hold a signed plan with a wrong, high version,
the next plan the controller signs still replaces it (by version it would not, until the
clock caught up), and the node reports that plan's version, so the controller's view of
what was delivered comes right again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from edge.media_cache import MediaCache
from edge.scheduler import LocalScheduler
from edge.store import NodeStore
from edge.trust import Gate
from mqtt_contract import ContractError, MediaRef, Plan

log = logging.getLogger(__name__)

STATE_KEEP_S = 7 * 24 * 3600
"""How long the outcome of an item that left the plan is remembered."""
FORGET_EVERY_S = 3600.0
"""Old outcomes are swept at most this often (a sweep is a query and a write; plans can
come every few seconds during an emergency)."""


class PlanKeeper:
    def __init__(self, node: str, store: NodeStore, cache: MediaCache,
                 scheduler: LocalScheduler, want_media: Callable[[MediaRef], None],
                 gate: Gate) -> None:
        self.node, self.store, self.cache = node, store, cache
        self.gate = gate
        self.scheduler, self.want_media = scheduler, want_media
        self.current: Plan | None = None
        self._swept_at = float("-inf")

    def restore(self) -> None:
        """At start: the plan kept in the store, before any network."""
        self.current = self.store.load_plan()
        self._hand_to_scheduler()

    def apply(self, plan: Plan) -> bool:
        """Take ``plan`` if the gate admits it (signed for us, fresh, signed after the one
        we hold); False when it changed nothing."""
        if not self.gate.admit_plan(plan):
            return False
        if plan.node != self.node:
            raise ContractError(f"plan for {plan.node!r} arrived at {self.node!r}")
        self.store.save_plan(plan)
        log.info("plan v%d applied: %d items", plan.version, len(plan.items))
        self.current = plan
        self._hand_to_scheduler()
        self.cache.prune({i.media.sha256 for i in plan.items})
        if time.monotonic() - self._swept_at >= FORGET_EVERY_S:
            self._swept_at = time.monotonic()
            self.scheduler.forget_states({i.id for i in plan.items},
                                         time.time() - STATE_KEEP_S)
        return True

    @property
    def version(self) -> int | None:
        return self.current.version if self.current else None

    def _hand_to_scheduler(self) -> None:
        for item in self.current.items if self.current else []:
            self.want_media(item.media)
        self.scheduler.set_plan(self.current)
