"""The `loaxa` command line: one typer app that mounts each part's commands."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer

app = typer.Typer(no_args_is_help=True, help="loaxa: commune loudspeakers and cameras")
controller_app = typer.Typer(no_args_is_help=True, help="The central controller.")
edge_app = typer.Typer(no_args_is_help=True, help="The agent on a node.")
fleet_app = typer.Typer(no_args_is_help=True, help="Node configs, credentials, broker files.")
broker_app = typer.Typer(no_args_is_help=True, help="The project-local Mosquitto.")
app.add_typer(controller_app, name="controller")
app.add_typer(edge_app, name="edge")
app.add_typer(fleet_app, name="fleet")
app.add_typer(broker_app, name="broker")

LogLevel = Annotated[str, typer.Option("--log-level", help="debug, info, warning, error")]


class LogFormat(StrEnum):
    """How the commands that run a service write their log on stderr."""

    text = "text"
    """For people at a terminal: time, level, logger, message."""
    json = "json"
    """One JSON object per line for a log collector (journald, Loki, Elasticsearch):
    ``ts`` (ISO 8601, UTC), ``level``, ``logger``, ``msg``, ``exc`` with an exception, and
    whatever a call passed as ``extra``."""


LogFormatOption = Annotated[LogFormat, typer.Option(
    "--log-format", envvar="LOAXA_LOG_FORMAT", case_sensitive=False,
    help="text (for people) or json (one object per line, for a log collector)")]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = {"levelname": "level", "name": "logger", "message": "msg", "exc_info": "exc"}
"""The record's attributes in a JSON line, under their short names."""


def json_formatter() -> logging.Formatter:
    """python-json-logger, set to the project's field names. uvicorn's ``color_message``
    (the same text with terminal colours) is left out."""
    from pythonjsonlogger.core import RESERVED_ATTRS
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter("{levelname}{name}{message}", style="{", rename_fields=JSON_FIELDS,
                         timestamp="ts", json_ensure_ascii=False,
                         reserved_attrs=[*RESERVED_ATTRS, "color_message"])


def log_handler(log_format: LogFormat, stream: TextIO) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter() if log_format is LogFormat.json
                         else logging.Formatter(TEXT_FORMAT))
    return handler


def setup_logging(level: str, log_format: LogFormat = LogFormat.text) -> None:
    logging.basicConfig(level=level.upper(), handlers=[log_handler(log_format, sys.stderr)])
    if level.lower() != "debug":  # a line per job run, every second: noise at info
        logging.getLogger("apscheduler").setLevel(logging.WARNING)


def fail(message: str) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(2)


def wait_for_signal() -> threading.Event:
    """An event set by Ctrl-C or SIGTERM, for clean shutdowns."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@controller_app.command("serve")
def controller_serve(host: Annotated[str | None, typer.Option()] = None,
                     port: Annotated[int | None, typer.Option()] = None,
                     log_level: LogLevel = "info",
                     log_format: LogFormatOption = LogFormat.text) -> None:
    """Run the controller API (settings from LOAXA_* environment variables): HTTPS when
    LOAXA_TLS_CERTFILE and LOAXA_TLS_KEYFILE are set; proxy headers only from
    LOAXA_TRUSTED_PROXIES."""
    import uvicorn

    from controller.app import create_app, server_options
    from controller.settings import Settings

    setup_logging(log_level, log_format)
    settings = Settings()
    options = server_options(settings)
    options |= {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    if log_format is LogFormat.json:  # uvicorn's loggers too, through the root's handler
        options["log_config"] = None
    uvicorn.run(create_app(settings), log_level=log_level.lower(), **options)


SigningDir = Annotated[Path | None, typer.Option(
    "--signing-dir", help="the signing-key folder (default: the controller's settings)")]


def _key_folder(signing_dir: Path | None):  # type: ignore[no-untyped-def]
    from controller.settings import Settings
    from controller.signing import KeyFolder

    return KeyFolder(signing_dir or Settings().signing_dir)


@controller_app.command("rotate-key")
def controller_rotate_key(signing_dir: SigningDir = None) -> None:
    """Start a key rotation: make the next signing key (nodes must trust it before
    finish-rotation; `loaxa fleet provision` writes both keys into every node config)."""
    from controller.signing import public_bytes
    from mqtt_contract import key_id

    folder = _key_folder(signing_dir)
    current, upcoming = folder.ensure(), folder.rotate()
    typer.echo(f"current key {key_id(public_bytes(current))}, next key "
               f"{key_id(public_bytes(upcoming))}: provision the nodes, then finish-rotation")


@controller_app.command("finish-rotation")
def controller_finish_rotation(signing_dir: SigningDir = None) -> None:
    """End a key rotation: the next key signs from now on and the old one is deleted."""
    from controller.signing import KeyFolderError, public_bytes
    from mqtt_contract import key_id

    try:
        key = _key_folder(signing_dir).finish()
    except KeyFolderError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"signing with {key_id(public_bytes(key))}; provision the nodes again so "
               "they stop trusting the old key")


@controller_app.command("keys")
def controller_keys(signing_dir: SigningDir = None) -> None:
    """The public keys nodes must trust now (base64), with their ids."""
    from mqtt_contract import decode_public_key, key_id

    for text in _key_folder(signing_dir).public_keys():
        typer.echo(f"{key_id(decode_public_key(text))} {text}")


@edge_app.command("run")
def edge_run(config: Annotated[Path, typer.Option("--config", "-c", help="node YAML")],
             log_level: LogLevel = "info",
             log_format: LogFormatOption = LogFormat.text) -> None:
    """Run the node agent from its config file."""
    from edge.agent import EdgeAgent
    from firmware_config.schema import ConfigError, load_node_config

    setup_logging(log_level, log_format)
    try:
        cfg = load_node_config(config)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    stop = wait_for_signal()
    restart = threading.Event()

    def restart_requested() -> None:  # a restart command: exit for systemd to start us
        restart.set()
        stop.set()

    agent = EdgeAgent(cfg, config_path=config, on_restart=restart_requested)
    agent.start()
    stop.wait()
    agent.stop()
    if restart.is_set():
        from mqtt_contract import RESTART_EXIT_CODE

        raise typer.Exit(RESTART_EXIT_CODE)


@app.command("simulate")
def simulate(nodes: Annotated[int, typer.Option("--nodes", "-n", min=1)] = 3,
             fleet: Annotated[Path, typer.Option(help="provisioned fleet folder")] = Path(
                 ".run/demo"),
             processes: Annotated[int | None, typer.Option(
                 "--processes", "-p", min=1,
                 help="worker processes (default: one per 500 nodes, at most one per core; "
                      "1 = this process)")] = None,
             log_level: LogLevel = "info",
             log_format: LogFormatOption = LogFormat.text) -> None:
    """Run N simulated nodes (the node's own parts, WAV file sinks) from a provisioned fleet.

    Each worker process runs its share of the nodes on one event loop; by default one
    worker per 500 nodes, at most one per core.
    """
    from devtools.simulator import (
        default_processes,
        find_node_configs,
        run_simulation,
        run_swarm,
    )

    setup_logging(log_level, log_format)  # this process; worker processes log as text
    configs = find_node_configs(fleet)
    if len(configs) < nodes:
        raise fail(f"{fleet} holds {len(configs)} node configs, {nodes} asked: run "
                   f"`loaxa fleet provision --nodes {nodes} --out {fleet}` first")
    workers = processes if processes is not None else default_processes(nodes)
    if workers == 1:
        run_simulation(configs[:nodes], wait_for_signal())
        return
    if run_swarm(configs[:nodes], workers, wait_for_signal(), log_level):
        raise typer.Exit(1)


FleetDir = Annotated[Path, typer.Option("--fleet", help="provisioned fleet folder")]


@fleet_app.command("provision")
def fleet_provision(out: Annotated[Path, typer.Option(help="output folder")] = Path(".run/demo"),
                    templates: Annotated[Path | None, typer.Option(help="node templates")] = None,
                    nodes: Annotated[int | None, typer.Option(help="synthetic nodes")] = None,
                    broker_port: Annotated[int, typer.Option(help="the TLS listener")] = 8883,
                    broker_host: Annotated[str, typer.Option(
                        help="what nodes connect to (a name in the broker certificate)")
                    ] = "127.0.0.1",
                    broker_name: Annotated[list[str] | None, typer.Option(
                        help="another name or address of the broker (repeatable)")] = None,
                    bind: Annotated[str, typer.Option(help="broker listen address")] = "127.0.0.1",
                    local_port: Annotated[int | None, typer.Option(
                        help="also a plain listener on 127.0.0.1 (a controller on the "
                             "broker's machine)")] = None,
                    controllers: Annotated[int, typer.Option(
                        min=1, help="controller replicas (one account each)")] = 1,
                    autosave_changes: Annotated[int, typer.Option(
                        min=0, help="0: save the broker's database every second; N: after "
                                    "every N changes")] = 0,
                    broker_user: Annotated[str, typer.Option(
                        help="who the broker runs as when started as root")] = "",
                    broker_owner: Annotated[str, typer.Option(
                        help="uid:gid owning the broker's files (a container's user)")] = "",
                    dynsec_plugin: Annotated[str, typer.Option(
                        help="mosquitto_dynamic_security.so on the broker's machine")] = "",
                    broker_dir_as_seen: Annotated[str, typer.Option(
                        help="the broker folder's path for the broker (a container)")] = "",
                    bundles: Annotated[bool, typer.Option(
                        help="also write each node's SD-card bundle")] = False,
                    signing_dir: Annotated[Path | None, typer.Option(
                        help="the controller's signing-key folder (created if missing); "
                             "default OUT/controller/secrets/signing")] = None,
                    ) -> None:
    """The fleet CA and certificates, per-node configs and passwords, the broker's conf
    and accounts (TLS listener only); a running broker is brought up to date."""
    from firmware_config.fleet_gen import write_synthetic_templates
    from firmware_config.provision import FleetSettings, provision
    from firmware_config.schema import ConfigError

    if nodes is not None:
        templates = write_synthetic_templates(out / "templates", nodes)
    templates = templates or Path(__file__).parent / "firmware_config" / "examples"
    settings = FleetSettings(broker_port, broker_host, list(broker_name or []), bind, local_port,
                             controllers, autosave_changes=autosave_changes,
                             broker_user=broker_user, broker_owner=broker_owner,
                             dynsec_plugin=dynsec_plugin, broker_dir_as_seen=broker_dir_as_seen)
    try:
        fleet = provision(templates, out, settings=settings, signing_dir=signing_dir)
        if bundles:
            from firmware_config.pi import write_bundle

            for node in fleet.node_configs:
                write_bundle(fleet, node)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{len(fleet.node_configs)} nodes provisioned; broker config {fleet.broker_conf}")


@fleet_app.command("add-node")
def fleet_add_node(node: Annotated[str, typer.Option("--node", help="node id")],
                   zone: Annotated[list[str], typer.Option("--zone", help="zone (repeatable)")],
                   fleet: FleetDir = Path(".run/demo"),
                   commune: Annotated[str | None, typer.Option(
                       help="default: the fleet's")] = None,
                   lat: Annotated[float | None, typer.Option()] = None,
                   lon: Annotated[float | None, typer.Option()] = None,
                   name: Annotated[str, typer.Option(help="a name people know")] = "",
                   audio: Annotated[str, typer.Option(help="alsa, ffplay or file")] = "alsa",
                   ) -> None:
    """One Raspberry Pi in one step: its config, password, certificate, broker account
    and ACL, systemd unit and first-boot script, bundled as one archive for its SD card."""
    from firmware_config.pi import write_bundle
    from firmware_config.provision import add_node
    from firmware_config.schema import ConfigError

    try:
        provisioned = add_node(fleet, node, zone, commune, lat, lon, name, audio)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    bundle = write_bundle(provisioned, node)
    typer.echo(f"{node} added; copy {bundle} onto its SD card's boot partition "
               f"(see docs/security.md)")


@fleet_app.command("revoke")
def fleet_revoke(node: Annotated[str, typer.Argument(help="node id")],
                 fleet: FleetDir = Path(".run/demo")) -> None:
    """Take a node out: its certificate on the CRL, its account and ACL deleted (a running
    broker cuts it off at once and re-reads the CRL), its password and key removed."""
    from firmware_config.provision import revoke
    from firmware_config.schema import ConfigError

    try:
        revoke(fleet, node)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{node} revoked")


@fleet_app.command("bridge")
def fleet_bridge(region: Annotated[str, typer.Option("--region", help="the region's name")],
                 commune: Annotated[list[str], typer.Option(
                     "--commune", help="a commune whose nodes use this broker (repeatable)")],
                 port: Annotated[int, typer.Option(help="the regional broker's TLS listener")],
                 fleet: FleetDir = Path(".run/demo"),
                 host: Annotated[str, typer.Option(
                     help="what the region's nodes connect to (in its certificate)")
                 ] = "127.0.0.1",
                 name: Annotated[list[str] | None, typer.Option(
                     "--name", help="another name or address of the regional broker")] = None,
                 bind: Annotated[str, typer.Option(help="its listen address")] = "127.0.0.1",
                 province_host: Annotated[str, typer.Option(
                     help="the province broker as the bridge reaches it")] = "127.0.0.1",
                 province_port: Annotated[int, typer.Option(
                     help="0: the fleet's broker port")] = 0,
                 ) -> None:
    """A regional broker bridged to the province broker: its conf (bridge topics from the
    contract, TLS, a persistent session), its nodes' accounts, the bridge's own account and
    role on the province broker; the region's node configs point at it."""
    from firmware_config.bridge import RegionSettings, declare_region
    from firmware_config.provision import provision
    from firmware_config.schema import ConfigError

    try:
        settings = RegionSettings(region, list(commune), port, host, list(name or []), bind,
                                  province_host, province_port)
        declare_region(fleet.resolve(), settings)
        provision(None, fleet)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"region {region} ({', '.join(commune)}): broker config "
               f"{settings.files(fleet.resolve()).conf}; run it with "
               f"`loaxa broker run --fleet {fleet} --region {region}`")


@broker_app.command("run")
def broker_run(fleet: Annotated[Path, typer.Option(help="provisioned fleet")] = Path(".run/demo"),
               region: Annotated[str | None, typer.Option(
                   help="a regional broker of the fleet (`loaxa fleet bridge`)")] = None,
               ) -> None:
    """Run mosquitto in the foreground with the fleet's generated config."""
    import os

    from firmware_config.broker import mosquitto_binary

    conf = (fleet / "regions" / region if region else fleet) / "broker" / "mosquitto.conf"
    if not conf.exists():
        raise fail(f"{conf} does not exist: run `loaxa fleet provision` first")
    os.execv(mosquitto_binary(), ["mosquitto", "-c", str(conf)])


@app.command("demo")
def demo(workdir: Annotated[Path, typer.Option()] = Path(".run/demo"),
         port: Annotated[int, typer.Option(help="controller HTTP port")] = 8000,
         exit_after_welcome: Annotated[bool, typer.Option(help="stop once played")] = False,
         log_level: LogLevel = "warning",
         log_format: LogFormatOption = LogFormat.text) -> None:
    """Broker, controller and three simulated nodes; plays a welcome announcement."""
    from devtools.demo import run_demo

    setup_logging(log_level, log_format)
    raise typer.Exit(run_demo(workdir, port, exit_after_welcome))


OPTIONAL_PACKAGES = {"numpy", "scipy", "pydub", "gtts", "cv2", "onnxruntime", "onnx"}


def _mount_optional() -> None:
    """Commands whose packages an install may lack (``loaxa[content]``, ``loaxa[edge]``):
    absent extras hide the command; any other import error is a bug and is raised."""
    try:
        from broadcasts.cli import text_app, tts_command

        app.command("tts")(tts_command)
        app.add_typer(text_app, name="text")
    except ModuleNotFoundError as exc:
        if exc.name not in OPTIONAL_PACKAGES:
            raise
    try:
        from devtools.camera.cli import eval_app

        app.add_typer(eval_app, name="eval")
    except ModuleNotFoundError as exc:
        if exc.name not in OPTIONAL_PACKAGES:
            raise
    try:  # development tools (devtools/, never imported by edge/): INT8, second-stage training
        from devtools.camera.quantize import model_app
        from devtools.camera.recheck_train import eval_recheck_command, train_recheck_command

        model_app.command("train-recheck")(train_recheck_command)
        model_app.command("eval-recheck")(eval_recheck_command)
        app.add_typer(model_app, name="model")
    except ModuleNotFoundError as exc:
        if exc.name not in OPTIONAL_PACKAGES:
            raise


_mount_optional()

if __name__ == "__main__":
    app()
