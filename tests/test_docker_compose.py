"""No Docker engine runs here: check the compose file against the real CLI and provisioning."""

from __future__ import annotations

import json
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
        if name not in enabled(set()) or svc.get("restart") == "no":
            continue  # the profiles': test_every_path_of_every_profile_exists_…
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


# ---------------------------------------------------------------- profiles

PROFILES = {"postgres", "replicas", "region"}
DEFAULT = {"provision", "mosquitto", "controller", "node-1", "node-2", "node-3"}
"""What `docker compose up` starts without a profile: the demo, as it was before them."""
REGION = "huyen-demo"


def profiles_of(name: str) -> set[str] | None:
    """The profiles that enable a service; None: always on."""
    profiles = SERVICES[name].get("profiles")
    return None if profiles is None else set(profiles)


def enabled(profiles: set[str]) -> set[str]:
    """The services compose runs with these profiles on."""
    return {n for n in SERVICES if profiles_of(n) is None or profiles_of(n) & profiles}


def one_shots_in_order(profiles: set[str]) -> list[str]:
    """The provisioning services (``restart: "no"``) enabled by ``profiles``, each after
    what it depends on: the order compose runs them in."""
    shots = [n for n in enabled(profiles) if SERVICES[n].get("restart") == "no"]
    ordered: list[str] = []
    while len(ordered) < len(shots):
        ready = sorted(n for n in shots if n not in ordered and all(
            d in ordered or d not in shots for d in SERVICES[n].get("depends_on", {})))
        assert ready, f"a dependency cycle among {shots}"
        ordered.append(ready[0])
    return ordered


def run_provisioning(fleet_dir: Path, profiles: set[str]) -> None:
    for name in one_shots_in_order(profiles):
        svc = SERVICES[name]
        mounts = mounts_of(svc)
        assert mounts.get("/fleet") == "./.run/compose-fleet", name
        args = [a.replace("/fleet", str(fleet_dir))
                .replace("/data", str(fleet_dir.parent / "controller-data"))
                for a in svc["command"][1:]]
        result = CliRunner().invoke(loaxa_cli.app, args)
        assert result.exit_code == 0, (name, result.output)


@pytest.fixture(scope="module")
def provisioned_all(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """The fleet as the provisioning services leave it with every profile on."""
    fleet_dir = tmp_path_factory.mktemp("compose-all") / "fleet"
    run_provisioning(fleet_dir, PROFILES)
    return fleet_dir


def controllers() -> list[str]:
    return sorted(n for n, s in SERVICES.items()
                  if s.get("command", [])[:3] == ["loaxa", "controller", "serve"])


def test_without_a_profile_compose_runs_the_demo_as_before() -> None:
    assert {p for n in SERVICES for p in profiles_of(n) or ()} == PROFILES
    assert enabled(set()) == DEFAULT
    assert one_shots_in_order(set()) == ["provision"]
    assert "--controllers" not in SERVICES["provision"]["command"]  # one account, as before
    assert SERVICES["controller"]["environment"]["LOAXA_DATABASE_URL"] == (
        "${LOAXA_DATABASE_URL:-}")  # unset: empty, which is SQLite in /data
    assert enabled({"postgres"}) == DEFAULT | {"postgres"}
    assert enabled({"replicas"}) == DEFAULT | {"postgres", "controller-2",
                                               "provision-replicas"}
    assert enabled({"region"}) == DEFAULT | {"mosquitto-region", "provision-region"}


@pytest.mark.parametrize("profiles", [set(), {"postgres"}, {"replicas"}, {"region"}, PROFILES],
                         ids=lambda p: "+".join(sorted(p)) or "default")
def test_depends_on_is_sound_under_every_profile(profiles: set[str]) -> None:
    """Every dependency exists; one that a profile may leave off is ``required: false``
    (else compose refuses the project); ``service_healthy`` only on a service with a
    healthcheck and ``service_completed_successfully`` only on a one-shot."""
    on = enabled(profiles)
    for name in on:
        for dep, how in SERVICES[name].get("depends_on", {}).items():
            assert dep in SERVICES, (name, dep)
            if dep not in on:
                assert how.get("required") is False, f"{name} needs {dep}, off here"
            condition = how["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[dep], (name, dep)
            elif condition == "service_completed_successfully":
                assert SERVICES[dep].get("restart") == "no", (name, dep)
            else:
                assert condition == "service_started", (name, dep)
    # what a profile starts waits for what it needs
    if "replicas" in profiles:
        needs = SERVICES["controller-2"]["depends_on"]
        assert needs["postgres"]["condition"] == "service_healthy"
        assert needs["provision-replicas"]["condition"] == "service_completed_successfully"
    if profiles & {"postgres", "replicas"}:
        assert SERVICES["controller"]["depends_on"]["postgres"]["condition"] == (
            "service_healthy")


def test_the_provisioning_steps_take_turns() -> None:
    """They all write the same fleet folder: never two at once, and the brokers read
    their accounts only after the last one."""
    assert one_shots_in_order(PROFILES) == ["provision", "provision-replicas",
                                            "provision-region"]
    assert "provision-replicas" in SERVICES["provision-region"]["depends_on"]
    for broker in ("mosquitto", "mosquitto-region"):
        deps = SERVICES[broker]["depends_on"]
        assert "provision-region" in deps, broker
    assert {"provision-replicas", "provision-region"} <= set(SERVICES["mosquitto"]["depends_on"])
    replicas = SERVICES["provision-replicas"]["command"]
    assert replicas[-2:] == ["--controllers", "2"]
    assert replicas[:-2] == SERVICES["provision"]["command"]  # the same fleet otherwise


def test_every_path_of_every_profile_exists_after_its_provisioning(
        provisioned_all: Path) -> None:
    for name, svc in SERVICES.items():
        if svc.get("restart") == "no" or "image" in svc and svc["image"].startswith("postgres"):
            continue
        paths = [a for a in svc.get("command", []) if a.startswith("/")]
        paths += [v for k, v in svc.get("environment", {}).items() if v.startswith("/")
                  and k != "LOAXA_DATA_DIR"]
        assert paths, name
        for path in paths:
            assert in_container(path, svc, provisioned_all).exists(), (name, path)


@pytest.mark.parametrize("profiles", [set(), PROFILES], ids=["default", "every-profile"])
def test_every_bind_mount_source_is_written_by_the_provisioning(
        profiles: set[str], tmp_path: Path) -> None:
    """A missing source is not an error to Docker: it creates an empty folder there (a
    folder where a password file should be), and the service fails later, obscurely."""
    fleet_dir = tmp_path / "fleet"
    run_provisioning(fleet_dir, profiles)
    for name in enabled(profiles):
        if SERVICES[name].get("restart") == "no":
            continue
        for source in mounts_of(SERVICES[name]).values():
            if source.startswith("./"):
                assert host_path(source, fleet_dir).exists(), (name, source)


def test_the_replicas_have_their_own_accounts_and_share_data(provisioned_all: Path) -> None:
    names = controllers()
    assert names == ["controller", "controller-2"]
    envs = [SERVICES[n]["environment"] for n in names]
    accounts = [(e["LOAXA_MQTT_USERNAME"], e["LOAXA_MQTT_CLIENT_ID"]) for e in envs]
    assert accounts == [("loaxa-controller", "loaxa-controller-1"),
                        ("loaxa-controller-2", "loaxa-controller-2")]
    dynsec = json.loads((provisioned_all / "broker" / "dynamic-security.json").read_text())
    bound = {c["username"]: c.get("clientid") for c in dynsec["clients"]}
    for user, client_id in accounts:
        assert bound[user] == client_id  # the broker binds each account to its client id
    for env in envs:  # each replica its own password, and only its own
        user = env["LOAXA_MQTT_USERNAME"]
        assert env["LOAXA_MQTT_PASSWORD_FILE"] == f"/fleet/secrets/{user}.pass"
    # one database, one data volume (media store, signing keys, token secret)
    assert len({e["LOAXA_DATABASE_URL"] for e in envs}) == 1
    assert all(mounts_of(SERVICES[n])["/data"] == "controller-data" for n in names)
    assert {e["LOAXA_DATA_DIR"] for e in envs} == {"/data"}
    host_ports = [p.split(":")[0] for n in names for p in SERVICES[n]["ports"]]
    assert len(host_ports) == len(set(host_ports))


def test_no_service_gets_a_secret_it_does_not_use(provisioned_all: Path) -> None:
    """Outside the provisioning steps nothing mounts the whole fleet, the CA or the
    secrets folder; a password file goes only to the service that logs in with it; the
    signing keys (controller-data) only to controllers; the regional broker only its own
    folder, which holds no password of the province's accounts."""
    secrets = provisioned_all / "secrets"
    for name, svc in SERVICES.items():
        mounts = mounts_of(svc)
        if svc.get("restart") == "no":
            continue
        for target, source in mounts.items():
            assert source not in ("./.run/compose-fleet", "./.run/compose-fleet/ca",
                                  "./.run/compose-fleet/secrets"), (name, source)
            if source.startswith("./.run/compose-fleet/secrets/"):
                assert svc["environment"]["LOAXA_MQTT_PASSWORD_FILE"] == target, name
            if source == "controller-data":
                assert name in controllers(), name
        if name == "postgres":
            assert list(mounts.values()) == ["postgres-data"]
    region = SERVICES["mosquitto-region"]
    assert list(mounts_of(region).values()) == [
        f"./.run/compose-fleet/regions/{REGION}/broker"]
    folder = provisioned_all / "regions" / REGION / "broker"
    texts = [p.read_bytes() for p in folder.rglob("*") if p.is_file()]
    for password_file in secrets.glob("*.pass"):
        if password_file.stem.startswith("loaxa-bridge-"):
            continue  # the bridge logs in to the province with it: its conf holds it
        secret = password_file.read_text().strip().encode()
        assert not [t for t in texts if secret in t], password_file.name
    assert not (folder / "ca.key").exists()


def test_the_region_bridges_to_the_province_broker_and_takes_the_nodes(
        provisioned_all: Path, provisioned: Path) -> None:
    region = SERVICES["mosquitto-region"]
    conf = in_container(region["command"][-1], region, provisioned_all).read_text()
    container_port = region["ports"][0].split(":")[1]
    assert f"listener {container_port} 0.0.0.0" in conf
    assert "address mosquitto:8883" in conf  # the province broker's service and port
    province = SERVICES["mosquitto"]["ports"][0].split(":")[1]
    assert province == "8883"
    assert "remote_username loaxa-bridge-huyen-demo" in conf
    dynsec = json.loads((provisioned_all / "broker" / "dynamic-security.json").read_text())
    assert "loaxa-bridge-huyen-demo" in {c["username"] for c in dynsec["clients"]}
    for node in ("node-1", "node-2", "node-3"):
        with_region = yaml.safe_load(
            (provisioned_all / "nodes" / node / "node.yaml").read_text())["mqtt"]
        default = yaml.safe_load((provisioned / "nodes" / node / "node.yaml").read_text())["mqtt"]
        assert (with_region["host"], with_region["port"]) == ("mosquitto-region",
                                                              int(container_port))
        assert (default["host"], default["port"]) == ("mosquitto", 8883)
