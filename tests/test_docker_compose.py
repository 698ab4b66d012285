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


def mounts_of(service: dict) -> dict[str, str]:
    """target → source of a service's volumes (named volumes or ./ host paths)."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        assert source.startswith("./") or source in COMPOSE["volumes"], f"{source} undeclared"
        out[target] = source
    return out


def host_path(source: str, fleet_dir: Path) -> Path:
    return Path(source.replace("./.run/compose-fleet", str(fleet_dir)))


def in_container(path: str, service: dict, fleet_dir: Path) -> Path:
    """Where ``path`` (inside the service's container) is on the host, through its mounts."""
    for target, source in sorted(mounts_of(service).items(), key=lambda m: -len(m[0])):
        if path == target or path.startswith(target + "/"):
            return Path(str(host_path(source, fleet_dir)) + path[len(target):])
    raise AssertionError(f"{path} is not mounted")


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    fleet_dir = tmp_path_factory.mktemp("compose") / "fleet"
    args = [a.replace("/fleet", str(fleet_dir)) for a in SERVICES["provision"]["command"][1:]]
    result = CliRunner().invoke(loaxa_cli.app, args)
    assert result.exit_code == 0, result.output
    return fleet_dir


def test_every_path_a_service_names_exists_after_provisioning(provisioned: Path) -> None:
    for name, svc in SERVICES.items():
        if name == "provision":
            continue
        paths = [a for a in svc.get("command", []) if a.startswith("/")]
        paths += [v for k, v in svc.get("environment", {}).items() if v.startswith("/")
                  and k != "LOAXA_DATA_DIR"]
        for path in paths:
            assert in_container(path, svc, provisioned).exists(), (name, path)


def test_the_broker_config_is_tls_only_and_unprivileged(provisioned: Path) -> None:
    conf = (provisioned / "broker" / "mosquitto.conf").read_text()
    assert "listener 8883 0.0.0.0" in conf and "allow_anonymous false" in conf
    assert [line for line in conf.splitlines() if line.startswith("listener")] == [
        "listener 8883 0.0.0.0"]
    assert "require_certificate true" in conf and "user mosquitto" in conf
    assert "plugin /usr/lib/mosquitto_dynamic_security.so" in conf
    for path in ("/fleet/broker/dynamic-security.json", "/fleet/broker/server.key",
                 "/fleet/broker/crl.pem"):
        assert path in conf
        assert in_container(path, SERVICES["mosquitto"], provisioned).exists()


def test_a_node_container_sees_only_its_own_files(provisioned: Path) -> None:
    """Issue 10: the whole fleet volume in every node container gave each node the
    controller's password. Now a node mounts its own folder, and that holds nothing of
    any other account."""
    controller_pw = (provisioned / "secrets" / "loaxa-controller.pass").read_text().strip()
    for name in ("node-1", "node-2", "node-3"):
        mounts = mounts_of(SERVICES[name])
        assert list(mounts.values()) == [f"./.run/compose-fleet/nodes/{name}"]
        folder = host_path(mounts["/node"], provisioned)
        names = sorted(p.name for p in folder.iterdir())
        assert names == ["ca.crt", "client.crt", "client.key", "mqtt.pass", "node.yaml"]
        for f in folder.iterdir():
            assert controller_pw not in f.read_text()
    assert list(mounts_of(SERVICES["mosquitto"]).values()) == ["./.run/compose-fleet/broker"]
    assert "ca" not in " ".join(mounts_of(SERVICES["controller"]).values()).split("/")
