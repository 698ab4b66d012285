"""What a committed change implies on the wire: plans to recompile, media to send, commands.

A service that changes something the nodes must hear about records it here, on the
session it changes (``effects_of(session).plans(targets)``). Nothing is sent while the
transaction is open: the runtime applies the effects once, after the commit
(``Runtime.apply``, wired to the session's ``after_commit`` event), and a rolled-back change
sends nothing. Routes never call the MQTT side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from controller import scope
from controller.domain import Targets
from mqtt_contract import Command

EFFECTS_KEY = "loaxa.effects"


@dataclass
class Effects:
    """The accumulated side effects of one transaction, in the order they go out:
    media first (so a command finds it coming), then commands, then plans."""

    media: list[tuple[int, Targets]] = field(default_factory=list)
    """(announcement id, targets): its audio, broadcast once per commune or zone."""
    commands: list[tuple[Targets, Command]] = field(default_factory=list)
    plan_targets: list[Targets] = field(default_factory=list)
    every_plan: bool = False
    """Recompile every node's plan (a group or a holiday changed: anything may match)."""
    plans_later: bool = False
    """Publish the plans a moment after the commands (an emergency: the command carries
    the item now, the plan is the safety net for nodes that missed it)."""
    commune: str | None = None
    """The commune of the session that made the change: everything it implies stays
    within it (``Targets.communes``), whatever the targets say (controller/scope.py)."""

    def _within(self, targets: Targets) -> Targets:
        return scope.within(self.commune, targets)

    def plans(self, *targets: Targets, later: bool = False) -> Effects:
        self.plan_targets.extend(self._within(t) for t in targets)
        self.plans_later = self.plans_later or later
        return self

    def all_plans(self) -> Effects:
        """Every node's plan; a commune's change: every node of that commune."""
        if self.commune is not None:
            return self.plans(Targets.everyone())
        self.every_plan = True
        return self

    def send_media(self, announcement_id: int, targets: Targets) -> Effects:
        self.media.append((announcement_id, self._within(targets)))
        return self

    def send_command(self, targets: Targets, command: Command) -> Effects:
        self.commands.append((self._within(targets), command))
        return self

    @property
    def plans_to_publish(self) -> list[Targets] | None:
        """The targets whose plans change; None means every node's."""
        return None if self.every_plan else self.plan_targets

    def __bool__(self) -> bool:
        return bool(self.media or self.commands or self.plan_targets or self.every_plan)


def effects_of(session: Session) -> Effects:
    """The effects pending on ``session``'s transaction (created on first use), within
    the session's commune when it has one."""
    effects = session.info.get(EFFECTS_KEY)
    if effects is None:
        effects = session.info[EFFECTS_KEY] = Effects(commune=scope.commune_of(session))
    return effects


def take(session: Session) -> Effects | None:
    """Remove and return what is pending (after a commit, or to drop it on rollback)."""
    return session.info.pop(EFFECTS_KEY, None)
