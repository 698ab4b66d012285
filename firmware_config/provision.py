"""Provisioning: from fleet templates to per-node configs, credentials, certificates and
broker files; adding one node; revoking one.

Input: a folder of node YAML templates (no secrets, e.g. firmware_config/examples); they
are copied into ``out/templates/``, which from then on is the fleet (``add_node`` writes
there, ``revoke`` moves a node out of it). Output (``out``)::

    fleet.json                   how the fleet was provisioned (broker names, ports, …)
    ca/                          the fleet CA: ca.key (0600), ca.crt, crl.pem, revoked.json
    secrets/<user>.pass          controller and administrator passwords (0600)
    controller/                  the controller's TLS files (ca.crt, client.crt, client.key)
    admin/                       the administrator's TLS files (dynamic-security commands)
    broker/                      mosquitto.conf, dynamic-security.json, server.crt|key,
                                 ca.crt, crl.pem, data/ (owned by the broker's user)
    nodes/<node>/                node.yaml, mqtt.pass, ca.crt, client.crt, client.key: the
                                 node's own files and nothing else (no other account's)
    bundles/<node>.tar.gz        what to copy onto the node's SD card (firmware_config/pi.py)

Running it again keeps passwords and certificates, so nodes in the field keep working; a
running broker gets new accounts and loses removed ones through the dynamic-security
control topic at once (the plugin disconnects a deleted account's client).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from firmware_config.bridge import (
    BRIDGE_USER_PREFIX,
    RegionSettings,
    bridge_account,
    load_regions,
    region_of,
    write_region,
)
from firmware_config.broker import (
    ADMIN_USER,
    BrokerAccount,
    BrokerFiles,
    ControlError,
    ListenerSettings,
    NodeAccount,
    TlsFiles,
    account_commands,
    admin_acl,
    apply_tls,
    controller_acl,
    node_acl,
    reload_broker,
    removal_commands,
    run_control,
    write_broker_files,
)
from firmware_config.pki import FleetCA, write_private
from firmware_config.schema import ConfigError, NodeConfig, load_node_config

CONTROLLER_USER = "loaxa-controller"
DEFAULT_SHARE_GROUP = "loaxa-controllers"
SYSTEMD_TEMPLATE = Path(__file__).with_name("templates") / "loaxa-edge.service"
NODE_PASSWORD = "mqtt.pass"
NODE_CA, NODE_CERT, NODE_KEY = "ca.crt", "client.crt", "client.key"


@dataclass
class FleetSettings:
    """How a fleet was provisioned; kept in ``fleet.json`` so ``add-node`` and ``revoke``
    redo the same."""

    broker_port: int
    broker_host: str = "127.0.0.1"
    """What nodes connect to; it is one of the broker certificate's names."""
    broker_names: list[str] = field(default_factory=list)
    """More names or addresses the broker is reached by (its certificate carries them)."""
    bind: str = "127.0.0.1"
    local_port: int | None = None
    controller_replicas: int = 1
    share_group: str = DEFAULT_SHARE_GROUP
    autosave_changes: int = 0
    broker_user: str = ""
    broker_owner: str = ""
    """``uid:gid`` to chown the broker's folder to when that user is not known here (the
    eclipse-mosquitto image's ``mosquitto`` is 1883:1883)."""
    dynsec_plugin: str = ""
    broker_dir_as_seen: str = ""
    """The broker folder's path for the broker, if it differs (a container)."""
    signing_dir: str = ""
    """The controller's signing-key folder whose public keys node configs trust (its
    ``LOAXA_SIGNING_KEY_DIR``); empty: ``out/controller/secrets/signing``."""

    def signing_folder(self, out: Path) -> Path:
        return Path(self.signing_dir) if self.signing_dir else (
            out / "controller" / "secrets" / "signing")

    def server_names(self) -> list[str]:
        names = [self.broker_host, *self.broker_names, "localhost", "127.0.0.1"]
        return list(dict.fromkeys(n for n in names if n and n != "0.0.0.0"))

    def listener(self) -> ListenerSettings:
        return ListenerSettings(self.broker_port, self.bind, self.local_port,
                                self.autosave_changes, self.dynsec_plugin, self.broker_user)

    def owner(self) -> tuple[int, int] | None:
        if not self.broker_owner:
            return None
        uid, _, gid = self.broker_owner.partition(":")
        return int(uid), int(gid or uid)

    @classmethod
    def load(cls, out: Path) -> FleetSettings:
        path = out / "fleet.json"
        if not path.exists():
            raise ConfigError(f"{out}: not a provisioned fleet (no fleet.json): run "
                              "`loaxa fleet provision` first")
        return cls(**json.loads(path.read_text()))

    def save(self, out: Path) -> None:
        (out / "fleet.json").write_text(json.dumps(asdict(self), indent=1) + "\n")


@dataclass(frozen=True)
class ProvisionedFleet:
    root: Path
    broker_conf: Path
    broker_port: int
    controller_user: str
    controller_password_file: Path
    node_configs: dict[str, Path]
    ca_file: Path = Path()
    controller_tls: TlsFiles | None = None
    admin_password_file: Path = Path()
    admin_tls: TlsFiles | None = None
    share_group: str = DEFAULT_SHARE_GROUP
    local_port: int | None = None
    signing_dir: Path | None = None
    """The controller's signing-key folder whose public keys the node configs trust."""

    @property
    def controller_password(self) -> str:
        return self.controller_password_file.read_text().strip()

    @property
    def controller_client_id(self) -> str:
        return controller_client_id(1)

    def controller_account(self, replica: int) -> tuple[str, str, str]:
        """(username, client id, password) of controller replica ``replica`` (from 1)."""
        user = controller_username(replica)
        return user, controller_client_id(replica), read_secret(
            self.root / "secrets" / f"{user}.pass")

    def node_password(self, node: str) -> str:
        return read_secret(self.node_configs[node].parent / NODE_PASSWORD)

    def node_client_id(self, node: str) -> str:
        cfg = load_node_config(self.node_configs[node])
        return NodeAccount(cfg.username, cfg.node_id, cfg.commune, ()).client_id

    def node_tls(self, node: str) -> TlsFiles:
        d = self.node_configs[node].parent
        return TlsFiles(d / NODE_CA, d / NODE_CERT, d / NODE_KEY)

    def mqtt_client(self, username: str, password: str, client_id: str,
                    tls: TlsFiles | None = None) -> Any:
        """A paho client (MQTT 5) set up for this fleet's TLS listener; not connected.
        Without ``tls``, the controller's TLS files."""
        from mqtt_contract import new_client

        client = new_client(client_id, username, password, persistent=False)
        apply_tls(client, tls or self.controller_tls)
        return client


def controller_username(replica: int) -> str:
    return CONTROLLER_USER if replica == 1 else f"{CONTROLLER_USER}-{replica}"


def controller_client_id(replica: int) -> str:
    """Each replica has its own account, bound to its own client id."""
    return f"{CONTROLLER_USER}-{replica}"


def read_secret(path: Path) -> str:
    return path.read_text().strip()


def load_fleet(templates: Path) -> list[tuple[NodeConfig, Path]]:
    """Every ``*.yaml`` under ``templates``; node ids and usernames must be unique."""
    files = sorted(templates.glob("*.yaml"))
    if not files:
        raise ConfigError(f"{templates}: no node *.yaml files")
    nodes = [(load_node_config(f), f) for f in files]
    seen: dict[str, str] = {}
    ids: dict[str, str] = {}
    for n, f in nodes:
        if n.username in seen:
            raise ConfigError(f"{f}: mqtt.username {n.username!r} is already {seen[n.username]}'s")
        if n.node_id in ids:
            raise ConfigError(f"{f}: node_id {n.node_id!r} is already {ids[n.node_id]}'s")
        seen[n.username], ids[n.node_id] = str(f), str(f)
    return nodes


def ensure_password(secrets_dir: Path, user: str) -> Path:
    return ensure_secret(secrets_dir / f"{user}.pass")


def ensure_secret(path: Path, legacy: Path | None = None) -> Path:
    """A random password at ``path`` (0600), kept if present (or taken from ``legacy``,
    where earlier versions kept node passwords)."""
    if not path.exists():
        value = (legacy.read_text().strip() if legacy and legacy.exists()
                 else secrets.token_urlsafe(24))
        write_private(path, (value + "\n").encode())
    path.chmod(0o600)
    return path


def controller_public_keys(signing_dir: Path) -> list[str]:
    """The public keys nodes must trust (the controller's signing key is created here if
    it does not exist yet, so it exists before any node config names it)."""
    from controller.signing import KeyFolder

    return KeyFolder(signing_dir).public_keys()


def node_config_document(node: NodeConfig, template: Path, settings: FleetSettings,
                         region: RegionSettings | None = None) -> dict:
    """The node's YAML: its template plus where and how to reach the broker (its region's,
    if its commune has one), with paths relative to the node's folder (the folder can move
    as a whole: a Pi's /etc/loaxa).

    Other parts of provisioning may add their own keys here (the controller's
    plan-signing public key)."""
    doc = yaml.safe_load(template.read_text(encoding="utf-8"))
    host, port = (region.host, region.port) if region else (settings.broker_host,
                                                             settings.broker_port)
    doc["mqtt"] = {**doc.get("mqtt", {}), "host": host, "port": port, "username": node.username,
                   "password_file": NODE_PASSWORD, "tls": True, "ca_file": NODE_CA,
                   "cert_file": NODE_CERT, "key_file": NODE_KEY}
    return doc


def _copy_templates(templates: Path, dest: Path, revoked: Path) -> None:
    """Copy the fleet's templates in, except revoked nodes': provisioning again from the
    original folder must not bring a revoked node back (``add_node`` does, on purpose)."""
    if templates.resolve() == dest.resolve():
        return
    dest.mkdir(parents=True, exist_ok=True)
    for f in sorted(templates.glob("*.yaml")):
        if not (revoked / f.name).exists():
            shutil.copyfile(f, dest / f.name)


def provision(templates: Path | None, out: Path, broker_port: int | None = None,
              broker_host: str = "127.0.0.1", bind: str = "127.0.0.1",
              settings: FleetSettings | None = None,
              signing_dir: Path | None = None) -> ProvisionedFleet:
    """Provision (or re-provision) the fleet in ``out`` from ``templates`` (None: the
    fleet's own ``out/templates``). A running broker is brought up to date."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if settings is None:
        if broker_port is None:
            settings = FleetSettings.load(out)
        else:
            settings = FleetSettings(broker_port, broker_host, bind=bind)
    if signing_dir is not None:
        settings.signing_dir = str(signing_dir.resolve())
    settings.save(out)
    signing = settings.signing_folder(out)
    trusted_keys = controller_public_keys(signing)
    fleet_templates = out / "templates"
    if templates is not None:
        _copy_templates(templates, fleet_templates, out / "revoked")
    nodes = load_fleet(fleet_templates)
    ca = FleetCA(_private_dir(out / "ca"))
    secrets_dir = _private_dir(out / "secrets")
    regions = load_regions(out)
    admin = _admin_account(out, ca)
    accounts = [*_controller_accounts(out, ca, settings), admin,
                *(bridge_account(out, r) for r in regions)]
    configs: dict[str, Path] = {}
    regional: dict[str, list[BrokerAccount]] = {r.name: [admin] for r in regions}
    for node, template in nodes:
        region = region_of(regions, node.commune)
        account, configs[node.node_id] = _provision_node(out, ca, node, template, settings,
                                                         trusted_keys, region)
        accounts.append(account)
        if region:
            regional[region.name].append(account)
    files = BrokerFiles(out / "broker")
    files.directory.mkdir(parents=True, exist_ok=True)
    ca.ensure(files.cert, files.key, "loaxa broker", server_names=settings.server_names())
    shutil.copyfile(ca.cert_path, files.ca)
    shutil.copyfile(ca.crl_path, files.crl)
    seen_as = Path(settings.broker_dir_as_seen) if settings.broker_dir_as_seen else None
    conf = write_broker_files(files, settings.listener(), accounts, settings.owner(), seen_as)
    fleet = ProvisionedFleet(
        out, conf, settings.broker_port, CONTROLLER_USER,
        secrets_dir / f"{CONTROLLER_USER}.pass", configs, ca.cert_path,
        _tls(out / "controller"), secrets_dir / f"{ADMIN_USER}.pass", _tls(out / "admin"),
        settings.share_group, settings.local_port, signing)
    sync_running_broker(fleet, accounts)
    for region in regions:
        _provision_region(fleet, ca, region, regional[region.name], settings)
    return fleet


def _provision_region(fleet: ProvisionedFleet, ca: FleetCA, region: RegionSettings,
                      accounts: list[BrokerAccount], settings: FleetSettings) -> None:
    """A regional broker's folder (firmware_config/bridge.py); a running one gets its
    accounts brought up to date like the province broker."""
    write_region(fleet.root, ca, region, settings.broker_port, accounts,
                 settings.dynsec_plugin, settings.broker_user, settings.owner())
    sync_accounts(region.port, region.files(fleet.root).pid,
                  read_secret(fleet.admin_password_file), fleet.admin_tls, accounts)


def _tls(directory: Path) -> TlsFiles:
    return TlsFiles(directory / NODE_CA, directory / NODE_CERT, directory / NODE_KEY)


def _private_dir(directory: Path) -> Path:
    """A folder holding secrets: its owner only."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    return directory


def _client_files(ca: FleetCA, directory: Path, common_name: str) -> None:
    _private_dir(directory)
    ca.ensure(directory / NODE_CERT, directory / NODE_KEY, common_name)
    shutil.copyfile(ca.cert_path, directory / NODE_CA)


def _controller_accounts(out: Path, ca: FleetCA, settings: FleetSettings) -> list[BrokerAccount]:
    _client_files(ca, out / "controller", CONTROLLER_USER)
    acls = tuple(controller_acl(settings.share_group))
    accounts = []
    for replica in range(1, settings.controller_replicas + 1):
        user = controller_username(replica)
        password = read_secret(ensure_password(out / "secrets", user))
        accounts.append(BrokerAccount(user, controller_client_id(replica), password, acls,
                                      role="loaxa-controller", text=f"controller {replica}"))
    return accounts


def _admin_account(out: Path, ca: FleetCA) -> BrokerAccount:
    _client_files(ca, out / "admin", ADMIN_USER)
    password = read_secret(ensure_password(out / "secrets", ADMIN_USER))
    return BrokerAccount(ADMIN_USER, ADMIN_USER, password, tuple(admin_acl()),
                         role="loaxa-admin", text="loaxa administrator")


def _provision_node(out: Path, ca: FleetCA, node: NodeConfig, template: Path,
                    settings: FleetSettings, trusted_keys: list[str],
                    region: RegionSettings | None = None) -> tuple[BrokerAccount, Path]:
    node_dir = _private_dir(out / "nodes" / node.node_id)
    password = read_secret(ensure_secret(node_dir / NODE_PASSWORD,
                                         legacy=out / "secrets" / f"{node.username}.pass"))
    _client_files(ca, node_dir, f"node {node.node_id}")
    config = node_dir / "node.yaml"
    doc = node_config_document(node, template, settings, region)
    doc["trusted_keys"] = trusted_keys
    config.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    na = NodeAccount(node.username, node.node_id, node.commune, tuple(node.zones))
    return BrokerAccount(node.username, na.client_id, password, tuple(node_acl(na)),
                         text=f"node {node.node_id}"), config


# a running broker ------------------------------------------------------------------------

def broker_running(pid_file: Path) -> bool:
    """Is the broker of ``pid_file`` up (it names a live process)?"""
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def control(fleet: ProvisionedFleet, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Send dynamic-security commands to the fleet's running broker as the administrator."""
    return run_control("127.0.0.1", fleet.broker_port, read_secret(fleet.admin_password_file),
                       commands, fleet.admin_tls)


def sync_running_broker(fleet: ProvisionedFleet, accounts: list[BrokerAccount]) -> bool:
    """The province broker's accounts, brought up to date (:func:`sync_accounts`)."""
    return sync_accounts(fleet.broker_port, BrokerFiles(fleet.root / "broker").pid,
                         read_secret(fleet.admin_password_file), fleet.admin_tls, accounts)


def sync_accounts(port: int, pid_file: Path, admin_password: str, admin_tls: TlsFiles | None,
                  accounts: list[BrokerAccount]) -> bool:
    """Create the accounts a running broker lacks and delete those no longer in the fleet
    (the plugin disconnects their clients at once, then saves its file). False if no
    broker runs: it reads the file written at its next start."""
    if not broker_running(pid_file):
        return False

    def send(commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return run_control("127.0.0.1", port, admin_password, commands, admin_tls)

    try:
        (listing,) = send([{"command": "listClients"}])
    except ControlError:
        return False  # another broker owns the port, or this one is starting
    present = set(listing.get("data", {}).get("clients", []))
    wanted = {a.username: a for a in accounts}
    commands: list[dict[str, Any]] = []
    for user in sorted(present - set(wanted)):
        commands += removal_commands(user, wanted_role(user))
    for user in sorted(set(wanted) - present):
        commands += account_commands(wanted[user])
    if commands:
        send(commands)
    return True


def wanted_role(user: str) -> str:
    """The role an account of ``user`` was created with (a bridge's is its name)."""
    return user if user.startswith(BRIDGE_USER_PREFIX) else f"role-{user}"


# one node -------------------------------------------------------------------------------

def add_node(out: Path, node_id: str, zones: list[str], commune: str | None = None,
             lat: float | None = None, lon: float | None = None,
             name: str = "", audio: str = "alsa") -> ProvisionedFleet:
    """Add (or re-add) one node to a provisioned fleet: its template, then the whole
    fleet's files; a running broker gets its account at once."""
    out = out.resolve()
    settings = FleetSettings.load(out)
    templates = out / "templates"
    existing = [load_node_config(f) for f in sorted(templates.glob("*.yaml"))]
    commune = commune or (existing[0].commune if existing else None)
    if commune is None:
        raise ConfigError("--commune is needed for the first node of a fleet")
    doc: dict[str, Any] = {"node_id": node_id, "commune": commune, "name": name or node_id,
                           "zones": zones, "audio": {"output": audio}}
    if lat is not None and lon is not None:
        doc["location"] = {"lat": lat, "lon": lon}
    template = templates / f"{node_id}.yaml"
    template.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    try:
        load_node_config(template)
    except ConfigError:
        template.unlink()
        raise
    (out / "revoked" / f"{node_id}.yaml").unlink(missing_ok=True)
    return provision(None, out, settings=settings)


def revoke(out: Path, node_id: str) -> ProvisionedFleet:
    """Take a node out of the fleet: its certificate goes on the CRL (the broker re-reads
    it on SIGHUP), its account and ACL are deleted from the running broker (which cuts the
    node off at once) and from the broker's file, and its password and key are removed."""
    out = out.resolve()
    settings = FleetSettings.load(out)
    template = out / "templates" / f"{node_id}.yaml"
    node_dir = out / "nodes" / node_id
    if not template.exists():
        raise ConfigError(f"{node_id} is not in the fleet at {out}")
    ca = FleetCA(out / "ca")
    if (node_dir / NODE_CERT).exists():
        ca.revoke(node_dir / NODE_CERT)
    (out / "revoked").mkdir(exist_ok=True)
    template.replace(out / "revoked" / f"{node_id}.yaml")
    shutil.rmtree(node_dir, ignore_errors=True)
    (out / "bundles" / f"{node_id}.tar.gz").unlink(missing_ok=True)
    fleet = provision(None, out, settings=settings)
    reload_broker(BrokerFiles(out / "broker").pid)
    for region in load_regions(out):  # each regional broker re-reads the CRL too
        reload_broker(region.files(out).pid)
    return fleet


def render_systemd_unit(config_path: Path, executable: str = "/opt/loaxa/.venv/bin/loaxa") -> str:
    """The unit a Pi runs the agent under (restart on failure, after the network)."""
    return SYSTEMD_TEMPLATE.read_text().format(exe=executable, config=config_path)
