"""No Docker engine runs here: check the compose file against the real CLI and provisioning."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.main import get_command
from typer.testing import CliRunner

import loaxa_cli
from tests.conftest import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def parse_cli(args: list[str]):  # type: ignore[no-untyped-def]
    """Resolve ``loaxa …`` through the real typer app; raise on unknown commands/options."""
    assert args[0] == "loaxa"
    command = get_command(loaxa_cli.app)  # typer's own (vendored) click objects
    rest = args[1:]
    ctx = command.make_context("loaxa", list(rest), resilient_parsing=False)
    while hasattr(command, "resolve_command"):  # a group: descend to the subcommand
        name, sub, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        assert sub is not None, f"unknown command {name}"
        command = sub
        ctx = command.make_context(name, list(rest), parent=ctx)
    return ctx


def test_services_are_broker_controller_and_three_nodes() -> None:
    assert {"mosquitto", "controller", "node-1", "node-2", "node-3", "provision"} <= set(SERVICES)
    assert (REPO / SERVICES["controller"]["build"]["dockerfile"]).exists()


@pytest.mark.parametrize("name", [n for n, s in SERVICES.items()
                                  if s.get("command", [None])[0] == "loaxa"])
def test_every_loaxa_command_parses_with_the_real_cli(name: str) -> None:
    ctx = parse_cli(SERVICES[name]["command"])
    assert ctx.command.callback is not None


def test_volumes_are_declared_and_paths_exist_after_provisioning(tmp_path: Path) -> None:
    declared = set(COMPOSE["volumes"])
    mounts: dict[str, str] = {}
    for svc in SERVICES.values():
        for volume in svc.get("volumes", []):
            source, target = volume.split(":")[:2]
            assert source in declared, f"volume {source} not declared"
            mounts[target] = source
    assert mounts["/fleet"] == "fleet"
    provision_cmd = SERVICES["provision"]["command"]
    fleet_dir = tmp_path / "fleet"
    args = [a.replace("/fleet", str(fleet_dir)) for a in provision_cmd[1:]]
    result = CliRunner().invoke(loaxa_cli.app, args)
    assert result.exit_code == 0, result.output
    for svc in SERVICES.values():
        for arg in svc.get("command", []):
            if arg.startswith("/fleet/"):
                assert Path(arg.replace("/fleet", str(fleet_dir))).exists(), arg
    env = SERVICES["controller"]["environment"]
    assert Path(env["LOAXA_MQTT_PASSWORD_FILE"].replace("/fleet", str(fleet_dir))).exists()
    conf = (fleet_dir / "broker" / "mosquitto.conf").read_text()
    assert "listener 1883 0.0.0.0" in conf and "allow_anonymous false" in conf
