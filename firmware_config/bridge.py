"""Regional brokers bridged to the province broker, generated from the contract.

A province outgrows one broker on one machine long before it outgrows the contract: the
communes of a district (or one large commune) get a broker of their own, near their
nodes, and that broker bridges to the province broker, where the controllers are. Nodes
of those communes connect to their regional broker; the controllers see the same topics
as if every node were on the province broker.

Everything here is derived from :data:`mqtt_contract.TOPICS`, so a topic added to the
contract is bridged with no edit here:

- what the controller sends (plans, commands, media) goes **in**, province to region;
- what nodes send (status, telemetry, playback, alerts, replies, media requests) goes
  **out**, region to province;
- each at its topic's QoS; only the region's communes (``loaxa/v1/{commune}/…``).

The bridge is an MQTT 5 client of the province broker (user properties, Correlation Data
and Message Expiry cross it), over TLS with a client certificate of the fleet CA, with a
persistent session on both sides (``cleansession false``, ``local_cleansession false``):
QoS 1 messages wait at the province broker while the regional broker is down, and at the
regional broker (on disk, with its persistence) while the link is down. Its account on
the province broker has a dynamic-security role of its own that allows exactly those
topics of exactly its communes (:func:`bridge_acl`): a stolen regional broker can neither
read another district's plans nor speak for its nodes.

Files (in the provisioned fleet ``out``)::

    regions/<name>/region.json      how the region was declared (``loaxa fleet bridge``)
    regions/<name>/broker/          its mosquitto.conf (0600: it holds the bridge's
                                    password), dynamic-security.json, server.crt|key,
                                    ca.crt, crl.pem, bridge.crt|key, data/
    secrets/loaxa-bridge-<name>.pass  the bridge account's password on the province broker

The regional broker holds the accounts of its communes' nodes and the administrator's;
those nodes' configs point at it (``firmware_config/provision.py`` asks :func:`region_of`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

from firmware_config.broker import (
    AclEntry,
    AclType,
    BrokerAccount,
    BrokerFiles,
    ListenerSettings,
    give_to_broker,
    render_conf,
    render_dynsec,
)
from firmware_config.pki import FleetCA, write_private
from firmware_config.schema import ConfigError
from mqtt_contract import TOPICS, Account, ContractError, check_segment

BRIDGE_USER_PREFIX = "loaxa-bridge"
REGIONS_DIR = "regions"
RESTART_TIMEOUT = (1, 30)
"""The bridge reconnects after 1 s, backing off to 30 s (Mosquitto's ``restart_timeout``)."""


class Direction(StrEnum):
    """Mosquitto's bridge directions, seen from the regional broker."""

    inbound = "in"
    outbound = "out"


@dataclass(frozen=True)
class BridgeTopic:
    """One ``topic`` line of the bridge: a filter, its direction and its QoS."""

    pattern: str
    direction: Direction
    qos: int

    def line(self) -> str:
        return f"topic {self.pattern} {self.direction.value} {self.qos}"


def bridge_topics(communes: Iterable[str]) -> list[BridgeTopic]:
    """Every contract topic of ``communes``: controller-sent in, node-sent out."""
    topics = []
    for commune in communes:
        for spec in TOPICS:
            way = Direction.inbound if spec.sender == Account.controller else Direction.outbound
            topics.append(BridgeTopic(spec.filter(commune), way, spec.qos))
    return topics


def bridge_acl(communes: Iterable[str]) -> list[AclEntry]:
    """The bridge account's role on the province broker: it publishes what the region's
    nodes send, subscribes to exactly the filters of what the controller sends them (and
    receives what those match), in the region's communes and nowhere else."""
    topics = bridge_topics(communes)
    sent = [t.pattern for t in topics if t.direction == Direction.outbound]
    taken = [t.pattern for t in topics if t.direction == Direction.inbound]
    return ([AclEntry(AclType.publish_send, t) for t in sent]
            + [AclEntry(AclType.subscribe_literal, t) for t in taken]
            + [AclEntry(AclType.publish_receive, t) for t in taken]
            + [AclEntry(AclType.unsubscribe_pattern, "#")])


@dataclass
class RegionSettings:
    """One regional broker: its communes, where it listens, where the province is."""

    name: str
    communes: list[str]
    port: int
    """The regional broker's TLS listener (its nodes connect here)."""
    host: str = "127.0.0.1"
    """What its nodes connect to; one of its certificate's names."""
    names: list[str] = field(default_factory=list)
    bind: str = "127.0.0.1"
    province_host: str = "127.0.0.1"
    """The province broker as the bridge reaches it (a name in its certificate)."""
    province_port: int = 0
    """0: the fleet's own broker port."""
    keepalive_s: int = 60

    def __post_init__(self) -> None:
        try:
            check_segment(self.name, "region")
            for commune in self.communes:
                check_segment(commune, "commune")
        except ContractError as exc:
            raise ConfigError(str(exc)) from None
        if not self.communes:
            raise ConfigError(f"region {self.name}: name at least one commune")

    @property
    def username(self) -> str:
        """The bridge's account on the province broker (also its bound client id)."""
        return f"{BRIDGE_USER_PREFIX}-{self.name}"

    def folder(self, out: Path) -> Path:
        return out / REGIONS_DIR / self.name

    def files(self, out: Path) -> BrokerFiles:
        return BrokerFiles(self.folder(out) / "broker")

    def server_names(self) -> list[str]:
        names = [self.host, *self.names, "localhost", "127.0.0.1"]
        return list(dict.fromkeys(n for n in names if n and n != "0.0.0.0"))

    def save(self, out: Path) -> None:
        self.folder(out).mkdir(parents=True, exist_ok=True)
        (self.folder(out) / "region.json").write_text(json.dumps(asdict(self), indent=1) + "\n")


def load_regions(out: Path) -> list[RegionSettings]:
    """Every region declared in the fleet ``out``; a commune belongs to one region only."""
    regions = [RegionSettings(**json.loads(p.read_text()))
               for p in sorted((out / REGIONS_DIR).glob("*/region.json"))]
    owner: dict[str, str] = {}
    for region in regions:
        for commune in region.communes:
            if commune in owner:
                raise ConfigError(f"commune {commune} is in regions {owner[commune]} and "
                                  f"{region.name}")
            owner[commune] = region.name
    return regions


def declare_region(out: Path, region: RegionSettings) -> None:
    """Record ``region`` in the fleet (replacing one of the same name), unless one of its
    communes is already another region's: then nothing is written."""
    for other in load_regions(out):
        taken = set(other.communes) & set(region.communes)
        if other.name != region.name and taken:
            raise ConfigError(f"commune {sorted(taken)[0]} is in regions {other.name} and "
                              f"{region.name}")
    region.save(out)


def region_of(regions: Iterable[RegionSettings], commune: str) -> RegionSettings | None:
    """The region whose broker a commune's nodes connect to (None: the province's)."""
    return next((r for r in regions if commune in r.communes), None)


def bridge_password(out: Path, region: RegionSettings) -> str:
    from firmware_config.provision import ensure_password, read_secret

    return read_secret(ensure_password(out / "secrets", region.username))


def bridge_account(out: Path, region: RegionSettings) -> BrokerAccount:
    """The bridge's account on the province broker, with its own role."""
    return BrokerAccount(region.username, region.username, bridge_password(out, region),
                         tuple(bridge_acl(region.communes)), role=region.username,
                         text=f"bridge of region {region.name}")


def render_bridge(region: RegionSettings, files: BrokerFiles, password: str,
                  province_port: int) -> str:
    """The ``connection`` section of the regional broker's mosquitto.conf."""
    d = files.directory
    topics = "\n".join(t.line() for t in bridge_topics(region.communes))
    low, high = RESTART_TIMEOUT
    return f"""
# bridge to the province broker (firmware_config/bridge.py, from mqtt_contract.TOPICS)
connection {region.username}
address {region.province_host}:{province_port}
bridge_protocol_version mqttv50
remote_clientid {region.username}
remote_username {region.username}
remote_password {password}
local_clientid {region.username}-local
cleansession false
local_cleansession false
start_type automatic
restart_timeout {low} {high}
keepalive_interval {region.keepalive_s}
notifications true
notifications_local_only true
try_private true
bridge_cafile {d / 'ca.crt'}
bridge_certfile {d / 'bridge.crt'}
bridge_keyfile {d / 'bridge.key'}
bridge_tls_version tlsv1.2
bridge_insecure false
{topics}
"""


def write_region(out: Path, ca: FleetCA, region: RegionSettings, province_port: int,
                 accounts: Iterable[BrokerAccount], plugin: str = "", user: str = "",
                 owner: tuple[int, int] | None = None) -> Path:
    """Write the regional broker's folder: certificates (server, and the bridge's client
    one), its accounts (``accounts``: the administrator and its nodes) and its conf with
    the bridge section. The conf holds the bridge's password, so it is 0600. Returns it."""
    import shutil

    files = region.files(out)
    files.data.mkdir(parents=True, exist_ok=True)
    ca.ensure(files.cert, files.key, f"loaxa broker {region.name}",
              server_names=region.server_names())
    ca.ensure(files.directory / "bridge.crt", files.directory / "bridge.key", region.username)
    shutil.copyfile(ca.cert_path, files.ca)
    shutil.copyfile(ca.crl_path, files.crl)
    write_private(files.dynsec, json.dumps(render_dynsec(accounts), indent=1).encode())
    listener = ListenerSettings(region.port, region.bind, plugin=plugin, user=user)
    conf = render_conf(files, listener) + render_bridge(
        region, files, bridge_password(out, region), region.province_port or province_port)
    write_private(files.conf, conf.encode())
    give_to_broker(files, listener, owner)
    return files.conf

