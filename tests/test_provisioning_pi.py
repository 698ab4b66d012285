"""A Raspberry Pi provisioned in one step (`loaxa fleet add-node`), tested as far as this
machine allows: the bundle's contents and modes, the unit (systemd-analyze verify), the
first-boot script (bash -n, shellcheck), and `loaxa edge run` with the generated files
connecting over TLS and answering a test tone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import loaxa_cli
import mqtt_contract as contract
from firmware_config.pi import render_firstboot
from firmware_config.provision import FleetSettings, ProvisionedFleet, provision
from tests.conftest import EXAMPLES, REPO, wait_for
from tests.trust_helpers import signed_command, signer_for

NODE = "node-7"


def add_node(fleet_root: Path, *extra: str) -> None:
    result = CliRunner().invoke(loaxa_cli.app, [
        "fleet", "add-node", "--fleet", str(fleet_root), "--node", NODE, "--zone", "thon-2",
        "--lat", "19.39", "--lon", "104.13", *extra])
    assert result.exit_code == 0, result.output


@pytest.fixture
def pi_fleet(fleet_dir: Path) -> ProvisionedFleet:
    provision(EXAMPLES, fleet_dir, settings=FleetSettings(18883, controller_replicas=2))
    add_node(fleet_dir)
    return provision(None, fleet_dir)


def test_the_bundle_holds_one_nodes_files_and_no_other_accounts(pi_fleet: ProvisionedFleet
                                                                 ) -> None:
    bundle = pi_fleet.root / "bundles" / f"{NODE}.tar.gz"
    assert bundle.stat().st_mode & 0o777 == 0o600
    with tarfile.open(bundle) as tar:
        members = {m.name: m for m in tar.getmembers()}
        contents = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert sorted(members) == sorted(f"loaxa/{n}" for n in (
        "node.yaml", "mqtt.pass", "ca.crt", "client.crt", "client.key", "loaxa-edge.service",
        "firstboot.sh"))
    for secret in ("mqtt.pass", "client.key", "node.yaml"):
        assert members[f"loaxa/{secret}"].mode == 0o600, secret
    others = [(pi_fleet.root / "secrets" / f).read_text().strip()
              for f in os.listdir(pi_fleet.root / "secrets")]
    others += [pi_fleet.node_password(n) for n in pi_fleet.node_configs if n != NODE]
    blob = b"".join(contents.values())
    assert all(pw.encode() not in blob for pw in others)
    assert pi_fleet.node_password(NODE).encode() in contents["loaxa/mqtt.pass"]
    assert b"storage_dir: /var/lib/loaxa/data" in contents["loaxa/node.yaml"]


def test_secrets_on_disk_are_private(pi_fleet: ProvisionedFleet) -> None:
    root = pi_fleet.root
    secret_files = [*(root / "secrets").iterdir(), root / "ca" / "ca.key",
                    root / "broker" / "server.key", root / "broker" / "dynamic-security.json",
                    root / "controller" / "client.key", root / "admin" / "client.key"]
    for node_yaml in pi_fleet.node_configs.values():
        secret_files += [node_yaml.parent / "mqtt.pass", node_yaml.parent / "client.key"]
    for path in secret_files:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
    for folder in ("secrets", "ca", "controller", "admin"):
        assert (root / folder).stat().st_mode & 0o077 == 0, folder


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (apt-get install systemd)")
def test_the_unit_passes_systemd_analyze_verify(pi_fleet: ProvisionedFleet, tmp_path: Path
                                                ) -> None:
    from firmware_config.provision import render_systemd_unit

    loaxa = Path(sys.executable).with_name("loaxa")  # an executable that exists here
    unit = tmp_path / "loaxa-edge.service"
    unit.write_text(render_systemd_unit(pi_fleet.node_configs[NODE], str(loaxa)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True)
    assert result.returncode == 0 and "loaxa-edge" not in result.stderr, result.stderr
    text = unit.read_text()
    for option in ("Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
                   "PrivateTmp=yes", "User=loaxa"):
        assert option in text


def test_the_first_boot_script_is_valid_bash_and_shellcheck_clean(tmp_path: Path) -> None:
    script = tmp_path / "firstboot.sh"
    script.write_text(render_firstboot())
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (make system-deps installs it)")
    result = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    for step in ("apt-get install", "loaxa[edge]", "chrony", "systemctl enable --now "
                 "loaxa-edge.service"):
        assert step in script.read_text()


def test_a_node_added_in_one_step_connects_over_tls_and_plays_a_test_tone(
        fleet_dir: Path, broker_process_for) -> None:  # type: ignore[no-untyped-def]
    """`loaxa edge run` on the files `add-node` wrote (the bundle's, unpacked), against
    the fleet's broker: it comes online over TLS and answers a test tone."""
    from firmware_config.broker import free_port

    fleet = provision(EXAMPLES, fleet_dir, settings=FleetSettings(free_port(),
                                                                  controller_replicas=2))
    add_node(fleet_dir, "--audio", "file")
    fleet = provision(None, fleet_dir)
    unpacked = fleet_dir.parent / "sd-card"
    with tarfile.open(fleet.root / "bundles" / f"{NODE}.tar.gz") as tar:
        tar.extractall(unpacked, filter="data")
    config = unpacked / "loaxa" / "node.yaml"
    # this machine is no Pi: keep state beside the config instead of /var/lib/loaxa
    config.write_text(config.read_text().replace("/var/lib/loaxa/", ""))
    user, client_id, password = fleet.controller_account(2)
    with broker_process_for(fleet):
        watcher = fleet.mqtt_client(user, password, client_id)
        seen: dict[str, dict] = {}
        watcher.on_message = lambda _c, _u, m: seen.__setitem__(m.topic, json.loads(m.payload))
        watcher.on_connect = lambda c, *_: c.subscribe([
            (contract.STATUS.filter(), 1), (contract.REPLY.filter(), 1)])
        watcher.connect("127.0.0.1", fleet.broker_port)
        watcher.loop_start()
        agent = subprocess.Popen([sys.executable, "-m", "loaxa_cli", "edge", "run", "--config",
                                  str(config), "--log-level", "warning"], cwd=REPO,
                                 env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            status = contract.STATUS.topic("xa-demo", node=NODE)
            wait_for(lambda: seen.get(status, {}).get("online"), 30, what=f"{NODE} online")
            tone = signed_command(signer_for(fleet), contract.Command(
                kind=contract.CommandKind.test_tone), to=NODE)
            watcher.publish(contract.NODE_CMD.topic("xa-demo", node=NODE), tone.to_bytes(), 1)
            reply = contract.REPLY.topic("xa-demo", node=NODE)
            wait_for(lambda: seen.get(reply, {}).get("command_id") == tone.id, 20,
                     what="the test tone's reply")
            assert seen[reply]["ok"], seen[reply]
            sink = unpacked / "loaxa" / "sink"
            wait_for(lambda: sink.exists() and any(sink.iterdir()), 10, what="the tone played")
        finally:
            agent.terminate()
            agent.wait(timeout=20)
            watcher.loop_stop()
        time.sleep(0.1)


def test_nodes_provisioned_before_tls_keep_their_passwords(tmp_path: Path) -> None:
    """Earlier versions kept node passwords in secrets/<node>.pass: a node in the field
    must keep working after the upgrade, so its password moves into its own folder."""
    old = tmp_path / "fleet" / "secrets" / "node-2.pass"
    old.parent.mkdir(parents=True)
    old.write_text("the-password-in-the-field\n")
    fleet = provision(EXAMPLES, tmp_path / "fleet", 18883)
    assert fleet.node_password("node-2") == "the-password-in-the-field"
