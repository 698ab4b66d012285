"""Signing for tests that publish hand-made plans and commands, as the controller would."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from controller.signing import Signer
from mqtt_contract import COMMAND_TTL_S, PLAN_TTL_S, Command, Plan, Signed, Target

M = TypeVar("M", bound=Signed)
COMMUNE = "xa-demo"


def signer_for(fleet) -> Signer:  # type: ignore[no-untyped-def]
    """A signer with the key the fleet's nodes trust (the controller's own key folder)."""
    return Signer(fleet.signing_dir)


def signed_command(signer: Signer, command: Command, target: Target = Target.node,
                   to: str | None = "node-1", commune: str = COMMUNE,
                   ttl_s: float = COMMAND_TTL_S) -> Command:
    return signer.sign(command, commune, target, to, ttl_s)


def signed_plan(signer: Signer, plan: Plan, commune: str = COMMUNE,
                ttl_s: float = PLAN_TTL_S) -> Plan:
    return signer.sign(plan, commune, Target.node, plan.node, ttl_s)


def throwaway_signer(folder: Path) -> Signer:
    """A signer whose key no node trusts (an attacker's own key)."""
    return Signer(folder)
