"""The project's own Mosquitto: configuration, accounts and ACL, from the fleet.

One broker account per node, one per controller replica and one administrator (for the
dynamic-security control topic). Accounts live in Mosquitto's dynamic-security plugin
(``dynamic-security.json``), not in a password file and an ACL file, because only the
plugin can

- bind a client id to its account (a node's credentials cannot take the controller's,
  or another node's, session: the broker refuses the CONNECT),
- check subscriptions themselves (Mosquitto 2.0's ``acl_file`` admits any SUBSCRIBE and
  filters only at delivery, so a node could join the controllers' shared-subscription
  group and swallow half of every node's alerts),
- disconnect a client at once when its account is deleted (revocation).

A node's account may write only the ``node/{node}/…`` topics it produces and subscribe
to exactly the filters the contract gives it (DESIGN.md, MQTT contract); the entries are
derived from ``mqtt_contract`` (:func:`node_acl`, :func:`controller_acl`). Files are
generated, never hand-edited.

Transport: one TLS listener (TLS 1.2 or later, the fleet CA, a client certificate
required, the CA's revocation list), and, optionally, a plain listener on 127.0.0.1 only
for a controller on the same machine.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from firmware_config.pki import write_private
from mqtt_contract import (
    TOPICS,
    Account,
    controller_subscriptions,
    node_publications,
    node_subscriptions,
)

PBKDF2_ITERATIONS = 101  # mosquitto_passwd's and dynsec's default (PBKDF2-SHA512)
DYNSEC_FILE = "dynamic-security.json"
DYNSEC_PLUGIN_PATHS = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/arm-linux-gnueabihf/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",  # the eclipse-mosquitto image
)
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
ADMIN_USER = "loaxa-admin"
UNPRIVILEGED_USERS = ("mosquitto", "nobody")
"""Who the broker runs as when started as root (the first that exists here)."""


class AclType(StrEnum):
    """The dynamic-security plugin's ACL kinds (mosquitto.org/documentation/dynamic-security)."""

    publish_send = "publishClientSend"
    publish_receive = "publishClientReceive"
    subscribe_literal = "subscribeLiteral"
    subscribe_pattern = "subscribePattern"
    unsubscribe_pattern = "unsubscribePattern"


@dataclass(frozen=True)
class AclEntry:
    kind: AclType
    topic: str
    allow: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"acltype": str(self.kind), "topic": self.topic, "priority": 0,
                "allow": self.allow}


@dataclass(frozen=True)
class NodeAccount:
    """What the broker needs to know about one node."""

    username: str
    node_id: str
    commune: str
    zones: tuple[str, ...]

    @property
    def client_id(self) -> str:
        return node_client_id(self.commune, self.node_id)


def node_client_id(commune: str, node: str) -> str:
    """The one client id a node's account may connect with (edge/agent.py uses it)."""
    return f"loaxa-node-{commune}-{node}"


@dataclass(frozen=True)
class BrokerAccount:
    """One dynamic-security client: its name, the client id bound to it, its role."""

    username: str
    client_id: str
    password: str
    acls: tuple[AclEntry, ...]
    role: str = ""
    text: str = ""

    @property
    def rolename(self) -> str:
        return self.role or f"role-{self.username}"


def hash_password(password: str, salt: bytes | None = None) -> str:
    """Hash in Mosquitto 2's ``$7$`` password-file format (kept for other tools)."""
    salt_b, digest = _pbkdf2(password, salt)
    b64 = base64.b64encode
    return f"$7${PBKDF2_ITERATIONS}${b64(salt_b).decode()}${b64(digest).decode()}"


def _pbkdf2(password: str, salt: bytes | None = None) -> tuple[bytes, bytes]:
    salt = salt or secrets.token_bytes(12)
    return salt, hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS, 64)


def dynsec_password(password: str) -> dict[str, Any]:
    """The plugin's stored form: PBKDF2-SHA512, so no plain password is in its file."""
    salt, digest = _pbkdf2(password)
    return {"password": base64.b64encode(digest).decode(),
            "salt": base64.b64encode(salt).decode(), "iterations": PBKDF2_ITERATIONS}


# ACLs, derived from the contract -----------------------------------------------------------

def node_acl(account: NodeAccount) -> list[AclEntry]:
    """A node's entries: it writes its own node-sent topics, subscribes to exactly the
    filters the contract gives it (literal: no ``#``, no ``$share/…``) and receives what
    they match."""
    writes = node_publications(account.commune, account.node_id)
    reads = [f for f, _ in node_subscriptions(account.commune, account.node_id,
                                              list(account.zones))]
    return ([AclEntry(AclType.publish_send, w) for w in writes]
            + [AclEntry(AclType.subscribe_literal, r) for r in reads]
            + [AclEntry(AclType.publish_receive, r) for r in reads]
            + [AclEntry(AclType.unsubscribe_pattern, "#")])


def controller_acl(share_group: str) -> list[AclEntry]:
    """The controller writes what the contract lets it send and reads what nodes send, in
    every commune; it subscribes to its contract subscriptions, the split ones through
    its shared-subscription group (which no node account may join), and may also take any
    node-sent topic whole: an observer on a replica account (a benchmark's watcher, an
    operator's tool) then sees every report without taking a share from the replicas, and
    reads nothing the account could not read already."""
    sent = [s.filter() for s in TOPICS if s.sender == Account.controller]
    received = [s.filter() for s in TOPICS if s.sender == Account.node]
    subscribed = sorted({f for f, _ in controller_subscriptions(share_group)} | set(received))
    return ([AclEntry(AclType.publish_send, t) for t in sent]
            + [AclEntry(AclType.subscribe_literal, t) for t in subscribed]
            + [AclEntry(AclType.publish_receive, t) for t in received]
            + [AclEntry(AclType.unsubscribe_pattern, "#")])


def admin_acl() -> list[AclEntry]:
    """The administrator only talks to the dynamic-security plugin."""
    control = "$CONTROL/dynamic-security/#"
    return [AclEntry(AclType.publish_send, control),
            AclEntry(AclType.subscribe_pattern, control),
            AclEntry(AclType.publish_receive, control)]


def render_dynsec(accounts: Iterable[BrokerAccount]) -> dict[str, Any]:
    """The plugin's whole configuration; everything not allowed is refused."""
    clients, roles = [], []
    for a in sorted(accounts, key=lambda a: a.username):
        clients.append({"username": a.username, "textname": a.text or a.username,
                        "clientid": a.client_id, **dynsec_password(a.password),
                        "roles": [{"rolename": a.rolename}]})
        roles.append({"rolename": a.rolename, "acls": [e.to_json() for e in a.acls]})
    return {"clients": clients, "roles": roles, "groups": [],
            "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False,
                                 "subscribe": False, "unsubscribe": False}}


def account_commands(account: BrokerAccount) -> list[dict[str, Any]]:
    """Control-topic commands that create ``account`` on a running broker."""
    return [{"command": "createRole", "rolename": account.rolename,
             "acls": [e.to_json() for e in account.acls]},
            {"command": "createClient", "username": account.username,
             "password": account.password, "clientid": account.client_id,
             "textname": account.text or account.username,
             "roles": [{"rolename": account.rolename}]}]


def removal_commands(username: str, rolename: str) -> list[dict[str, Any]]:
    """Delete an account (the plugin disconnects its client at once) and its role."""
    return [{"command": "deleteClient", "username": username},
            {"command": "deleteRole", "rolename": rolename}]


# mosquitto.conf ------------------------------------------------------------------------

@dataclass(frozen=True)
class BrokerFiles:
    """Where the broker's files are (all inside one folder owned by the broker's user)."""

    directory: Path

    @property
    def conf(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def dynsec(self) -> Path:
        return self.directory / DYNSEC_FILE

    @property
    def cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def key(self) -> Path:
        return self.directory / "server.key"

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def crl(self) -> Path:
        return self.directory / "crl.pem"

    @property
    def pid(self) -> Path:
        return self.directory / "mosquitto.pid"

    @property
    def data(self) -> Path:
        return self.directory / "data"


def autosave_lines(changes: int) -> str:
    """Mosquitto's save policy: every second (0), or after ``changes`` changes."""
    if changes > 0:
        return f"autosave_on_changes true\nautosave_interval {changes}"
    return "autosave_on_changes false\nautosave_interval 1"


@dataclass(frozen=True)
class ListenerSettings:
    port: int
    bind: str = "127.0.0.1"
    local_port: int | None = None
    """A plain-text listener on 127.0.0.1 only, for a controller on the broker's machine."""
    autosave_changes: int = 0
    """0 (the default): save the in-memory database every second. N > 0: after every N
    changes (retained messages, subscriptions, queued messages). Each save writes the whole
    database, so saving after every change stalls the broker for seconds per bulk plan
    publish at 1,000 nodes (an emergency stop sat behind it and never arrived in time);
    a second's loss on a crash is covered by the controller, which republishes every
    plan when it reconnects, and by the nodes, which keep their plans."""
    plugin: str = ""
    """Path of mosquitto_dynamic_security.so on the broker's machine (default: found)."""
    user: str = ""
    """Who the broker runs as when started as root (default: an unprivileged user)."""
    paths: dict[str, str] = field(default_factory=dict)
    """Where the broker's folder is as the broker sees it (a container), if elsewhere."""


def dynsec_plugin() -> str:
    for candidate in DYNSEC_PLUGIN_PATHS:
        if Path(candidate).exists():
            return candidate
    return DYNSEC_PLUGIN_PATHS[0]


def broker_user() -> str:
    """An unprivileged user for the broker; only meaningful when it starts as root."""
    for name in UNPRIVILEGED_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("no unprivileged user (mosquitto, nobody) to run the broker as")


def render_conf(files: BrokerFiles, settings: ListenerSettings,
                seen_as: Path | None = None) -> str:
    """TLS listener (1.2+, client certificate required, CRL), persistence saved on change,
    dynamic security, no anonymous access; ``seen_as`` is the folder's path for the
    broker if it differs (a container)."""
    d = BrokerFiles(seen_as or files.directory)
    user = settings.user or (broker_user() if os.geteuid() == 0 else "")
    local = (f"\n# a controller on this machine only\nlistener {settings.local_port} 127.0.0.1\n"
             if settings.local_port else "")
    return f"""# Generated by loaxa (firmware_config/broker.py); edits are overwritten.
{f'user {user}' if user else '# not started as root: runs as the user who starts it'}
per_listener_settings false
allow_anonymous false
plugin {settings.plugin or dynsec_plugin()}
plugin_opt_config_file {d.dynsec}
pid_file {d.pid}
persistence true
persistence_location {d.data}/
{autosave_lines(settings.autosave_changes)}
max_queued_messages 10000
max_inflight_messages 100
message_size_limit 1048576
log_dest stdout
log_type error
log_type warning
log_type notice

listener {settings.port} {settings.bind}
cafile {d.ca}
certfile {d.cert}
keyfile {d.key}
crlfile {d.crl}
tls_version tlsv1.2
require_certificate true
{local}"""


def write_broker_files(files: BrokerFiles, settings: ListenerSettings,
                       accounts: Iterable[BrokerAccount], owner: tuple[int, int] | None = None,
                       seen_as: Path | None = None) -> Path:
    """Write mosquitto.conf and the dynamic-security file into the broker's folder (the
    certificates are copied there by the provisioner); hand the folder to the broker's
    user, so it can read its key and write its database. Return the conf path."""
    files.data.mkdir(parents=True, exist_ok=True)
    write_private(files.dynsec, json.dumps(render_dynsec(accounts), indent=1).encode())
    files.conf.write_text(render_conf(files, settings, seen_as))
    files.conf.chmod(0o644)
    give_to_broker(files, settings, owner)
    return files.conf


def give_to_broker(files: BrokerFiles, settings: ListenerSettings,
                   owner: tuple[int, int] | None = None) -> None:
    """chown the broker's folder to the user it runs as (only possible as root)."""
    if owner is None and os.geteuid() == 0:
        entry = pwd.getpwnam(settings.user or broker_user())
        owner = (entry.pw_uid, entry.pw_gid)
    if owner is None:
        return
    for root, dirs, names in os.walk(files.directory):
        os.chown(root, *owner)
        for name in dirs + names:
            os.chown(Path(root) / name, *owner)


# clients -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TlsFiles:
    """What a client needs to open a TLS session with the broker."""

    ca: Path
    cert: Path | None = None
    key: Path | None = None


def client_tls_context(tls: TlsFiles) -> ssl.SSLContext:
    """TLS 1.2+, the fleet CA only (not the system store), host name checked."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cafile=str(tls.ca))
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    if tls.cert and tls.key:
        ctx.load_cert_chain(str(tls.cert), str(tls.key))
    return ctx


def apply_tls(client: Any, tls: TlsFiles | None) -> None:
    """Configure a paho client for ``tls`` (None: a loopback plain listener). paho checks
    the host it connects to against the broker certificate's names."""
    if tls is not None:
        client.tls_set_context(client_tls_context(tls))


class ControlError(RuntimeError):
    """The broker refused a dynamic-security command, or could not be reached."""


def run_control(host: str, port: int, password: str, commands: list[dict[str, Any]],
                tls: TlsFiles | None, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Send dynamic-security ``commands`` as the administrator; return the responses.

    Raises :class:`ControlError` if the broker cannot be reached or answers with an
    error (except "not found" on deletions, which are idempotent)."""
    from mqtt_contract import connect_properties, new_client

    client = new_client(ADMIN_USER, ADMIN_USER, password, persistent=False)
    apply_tls(client, tls)
    done, connected = threading.Event(), threading.Event()
    result: dict[str, Any] = {}
    correlation = uuid.uuid4().hex
    for i, command in enumerate(commands):
        command.setdefault("correlationData", f"{correlation}-{i}")

    def on_connect(c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            result["error"] = str(reason)
            done.set()
            return
        c.subscribe(f"{CONTROL_TOPIC}/response", 1)

    def on_subscribe(c: Any, *_: Any) -> None:
        connected.set()
        c.publish(CONTROL_TOPIC, json.dumps({"commands": commands}), qos=1)

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        result["responses"] = json.loads(msg.payload).get("responses", [])
        done.set()

    client.on_connect, client.on_subscribe, client.on_message = (on_connect, on_subscribe,
                                                                 on_message)
    try:
        client.connect(host, port, keepalive=30, clean_start=True,
                       properties=connect_properties(persistent=False))
    except (OSError, ssl.SSLError) as exc:
        raise ControlError(f"cannot reach the broker at {host}:{port}: {exc}") from None
    client.loop_start()
    try:
        if not done.wait(timeout):
            raise ControlError("the broker did not answer the dynamic-security command")
    finally:
        client.disconnect()
        client.loop_stop()
    if "error" in result:
        raise ControlError(f"the broker refused the administrator: {result['error']}")
    responses = result.get("responses", [])
    for r in responses:
        error = r.get("error")
        if error and not (r.get("command", "").startswith("delete") and "not found" in error):
            raise ControlError(f"{r.get('command')}: {error}")
    return responses


# running a broker --------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if not found:
        raise RuntimeError("mosquitto is not installed: apt-get install mosquitto")
    return found


def reload_broker(pid_file: Path) -> bool:
    """SIGHUP the broker of ``pid_file`` (it re-reads its certificates and CRL); False if
    no broker runs."""
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return False
    return True


class BrokerProcess:
    """A project-local mosquitto that can be stopped and started again on the same port
    (its persistence file keeps sessions and retained plans across, as in the field)."""

    def __init__(self, conf: Path, port: int, log: Path | None = None) -> None:
        self.conf, self.port, self.log = conf, port, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.conf)], stdout=out,
                                     stderr=subprocess.STDOUT)
        if self.log:
            out.close()  # type: ignore[union-attr]  # the child keeps its own descriptor
        try:
            wait_for_port("127.0.0.1", self.port)
        except TimeoutError:
            self.kill()
            detail = self.log.read_text()[-2000:] if self.log and self.log.exists() else ""
            raise TimeoutError(f"mosquitto did not start on {self.port}\n{detail}") from None

    def reload(self) -> None:
        """SIGHUP: mosquitto re-reads its certificates and its CRL."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)

    def kill(self) -> None:
        """kill -9: no chance to save anything (what a power cut does)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def running_broker(conf: Path, port: int, log: Path | None = None) -> Iterator[BrokerProcess]:
    """Run a project-local mosquitto with ``conf`` until the block ends."""
    broker = BrokerProcess(conf, port, log)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
