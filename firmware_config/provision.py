"""Provisioning: from fleet templates to per-node configs, credentials and broker files.

Input: a folder of node YAML templates (no secrets, e.g. firmware_config/examples).
Output (``out``):

    secrets/<user>.pass          one random password per broker account (kept across runs)
    nodes/<node>/node.yaml       the node's full config, pointing at its password file
    broker/mosquitto.conf|passwd|acl

Running it again reuses existing passwords, so nodes already in the field keep working.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml

from firmware_config.broker import NodeAccount, write_broker_files
from firmware_config.schema import ConfigError, NodeConfig, load_node_config

CONTROLLER_USER = "loaxa-controller"
SYSTEMD_TEMPLATE = Path(__file__).with_name("templates") / "loaxa-edge.service"


@dataclass(frozen=True)
class ProvisionedFleet:
    root: Path
    broker_conf: Path
    broker_port: int
    controller_user: str
    controller_password_file: Path
    node_configs: dict[str, Path]
    signing_dir: Path | None = None
    """The controller's signing-key folder whose public keys the node configs trust."""

    @property
    def controller_password(self) -> str:
        return self.controller_password_file.read_text().strip()


def load_fleet(templates: Path) -> list[NodeConfig]:
    """Every ``*.yaml`` under ``templates``; node ids and usernames must be unique."""
    files = sorted(templates.glob("*.yaml"))
    if not files:
        raise ConfigError(f"{templates}: no node *.yaml files")
    nodes = [load_node_config(f) for f in files]
    seen: dict[str, str] = {}
    for f, n in zip(files, nodes, strict=True):
        if n.username in seen:
            raise ConfigError(f"{f}: mqtt.username {n.username!r} is already {seen[n.username]}'s")
        seen[n.username] = str(f)
    return nodes


def ensure_password(secrets_dir: Path, user: str) -> Path:
    path = secrets_dir / f"{user}.pass"
    if not path.exists():
        secrets_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24) + "\n")
        path.chmod(0o600)
    return path


def node_config_document(node: NodeConfig, template: Path, host: str, port: int,
                         password_file: Path) -> dict:
    """The node's YAML: its template plus where and how to reach the broker."""
    doc = yaml.safe_load(template.read_text(encoding="utf-8"))
    doc["mqtt"] = {**doc.get("mqtt", {}), "host": host, "port": port,
                   "username": node.username, "password_file": str(password_file)}
    return doc


def controller_public_keys(signing_dir: Path) -> list[str]:
    """The public keys nodes must trust (the controller's signing key is created here if
    it does not exist yet, so it exists before any node config names it)."""
    from controller.signing import KeyFolder

    return KeyFolder(signing_dir).public_keys()


def provision(templates: Path, out: Path, broker_port: int, broker_host: str = "127.0.0.1",
              bind: str = "127.0.0.1", signing_dir: Path | None = None) -> ProvisionedFleet:
    """``signing_dir``: the controller's key folder (its ``Settings.signing_dir``);
    default ``out/controller/secrets/signing``, which a controller whose data dir is
    ``out/controller`` uses."""
    nodes = load_fleet(templates)
    signing_dir = signing_dir or out / "controller" / "secrets" / "signing"
    trusted_keys = controller_public_keys(signing_dir)
    secrets_dir = out / "secrets"
    passwords = {CONTROLLER_USER: ensure_password(secrets_dir, CONTROLLER_USER)}
    configs: dict[str, Path] = {}
    for node, template in zip(nodes, sorted(templates.glob("*.yaml")), strict=True):
        pw_file = ensure_password(secrets_dir, node.username)
        passwords[node.username] = pw_file
        node_dir = out / "nodes" / node.node_id
        node_dir.mkdir(parents=True, exist_ok=True)
        doc = node_config_document(node, template, broker_host, broker_port, pw_file.resolve())
        doc["trusted_keys"] = trusted_keys
        configs[node.node_id] = node_dir / "node.yaml"
        configs[node.node_id].write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    accounts = [NodeAccount(n.username, n.node_id, n.commune, tuple(n.zones)) for n in nodes]
    conf = write_broker_files(out / "broker", broker_port,
                              {u: p.read_text().strip() for u, p in passwords.items()},
                              accounts, CONTROLLER_USER, bind)
    return ProvisionedFleet(out, conf, broker_port, CONTROLLER_USER,
                            passwords[CONTROLLER_USER], configs, signing_dir)


def render_systemd_unit(config_path: Path, executable: str = "/opt/loaxa/.venv/bin/loaxa") -> str:
    """The unit a Pi runs the agent under (restart on failure, after the network)."""
    return SYSTEMD_TEMPLATE.read_text().format(exe=executable, config=config_path)
