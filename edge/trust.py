"""The node's gate for signed plans and commands: nothing is applied before it says yes.

A message passes when it is signed by a key of the node config's ``trusted_keys`` (the
controller's current key, and its next key during a rotation), is addressed to this node
(its commune, and its node id, one of its zones, or the whole commune), has not expired,
and is newer (its sequence number) than the last message taken on the same stream — per
signer key and addressee, kept in the node's SQLite so a restart changes nothing. A plan
must also keep its version within :data:`~mqtt_contract.PLAN_VERSION_LEAD_MS` of its
signing time. A refusal is logged in one line (no payload) and counted by reason; the
counts go out in the node's telemetry.

The same message received twice (QoS 1 redelivery, the retained plan again after a
resubscribe) has the sequence already taken: it is dropped quietly, not counted.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable

from edge.store import NodeStore
from mqtt_contract import (
    PLAN_VERSION_LEAD_MS,
    Plan,
    Refusal,
    Signed,
    Target,
    decode_public_key,
    key_id,
    verify_signature,
)

log = logging.getLogger(__name__)


class Gate:
    def __init__(self, node: str, commune: str, zones: Iterable[str],
                 trusted_keys: Iterable[str], store: NodeStore,
                 now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000) -> None:
        self.node, self.commune, self.zones = node, commune, frozenset(zones)
        self.store, self.now_ms = store, now_ms
        raws = [decode_public_key(k) for k in trusted_keys]
        self.trusted = {key_id(raw): raw for raw in raws}
        self.refused: Counter[Refusal] = Counter()
        if not self.trusted:
            log.error("node %s trusts no controller key (trusted_keys is empty): every plan "
                      "and command will be refused; provision the node again", node)

    def counts(self) -> dict[Refusal, int]:
        return dict(self.refused)

    def admit_command(self, message: Signed, what: str) -> bool:
        """May this command run? Checks, logs and counts; records its sequence if so."""
        return self._admit("cmd", message, what, self._refusal(message))

    def admit_plan(self, plan: Plan) -> bool:
        """May this plan replace the one held? As for a command, plus the version bound."""
        refusal = self._refusal(plan)
        if refusal is None and plan.sig is not None and (
                plan.version > plan.sig.signed_ms + PLAN_VERSION_LEAD_MS):
            refusal = Refusal.version_ahead
        return self._admit("plan", plan, f"plan v{plan.version}", refusal)

    def _admit(self, kind: str, message: Signed, what: str, refusal: Refusal | None) -> bool:
        if refusal is None:
            assert message.sig is not None
            stream = f"{kind}/{message.sig.stream()}"
            before = self.store.accept_seq(stream, message.sig.seq)
            if before is None or before < message.sig.seq:
                return True
            if before == message.sig.seq:
                log.debug("%s seen before (seq %d); dropped", what, before)
                return False
            refusal = Refusal.replayed
        self.refused[refusal] += 1
        sig = message.sig
        log.warning("refused %s: %s (key %s, seq %s)", what, refusal.value,
                    sig.key_id if sig else "-", sig.seq if sig else "-")
        return False

    def _refusal(self, message: Signed) -> Refusal | None:
        """What is wrong with ``message`` before its order is looked at, or None."""
        if (bad := verify_signature(message, self.trusted)) is not None:
            return bad
        sig = message.sig
        assert sig is not None
        if sig.commune != self.commune:
            return Refusal.wrong_commune
        if not self._for_me(sig.target, sig.to):
            return Refusal.wrong_target
        if sig.expires_ms < self.now_ms():
            return Refusal.expired
        return None

    def _for_me(self, target: Target, to: str | None) -> bool:
        if target == Target.node:
            return to == self.node
        if target == Target.zone:
            return to in self.zones
        return to is None
