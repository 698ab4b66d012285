"""The `loaxa` command line: one typer app that mounts each part's commands."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

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


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


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
                     log_level: LogLevel = "info") -> None:
    """Run the controller API (settings from LOAXA_* environment variables): HTTPS when
    LOAXA_TLS_CERTFILE and LOAXA_TLS_KEYFILE are set; proxy headers only from
    LOAXA_TRUSTED_PROXIES."""
    import uvicorn

    from controller.app import create_app, server_options
    from controller.settings import Settings

    setup_logging(log_level)
    settings = Settings()
    options = server_options(settings)
    options |= {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    uvicorn.run(create_app(settings), log_level=log_level.lower(), **options)


@edge_app.command("run")
def edge_run(config: Annotated[Path, typer.Option("--config", "-c", help="node YAML")],
             log_level: LogLevel = "info") -> None:
    """Run the node agent from its config file."""
    from edge.agent import EdgeAgent
    from firmware_config.schema import ConfigError, load_node_config

    setup_logging(log_level)
    try:
        cfg = load_node_config(config)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    agent = EdgeAgent(cfg)
    stop = wait_for_signal()
    agent.start()
    stop.wait()
    agent.stop()


@app.command("simulate")
def simulate(nodes: Annotated[int, typer.Option("--nodes", "-n", min=1)] = 3,
             fleet: Annotated[Path, typer.Option(help="provisioned fleet folder")] = Path(
                 ".run/demo"),
             processes: Annotated[int | None, typer.Option(
                 "--processes", "-p", min=1,
                 help="worker processes (default: one per 500 nodes, at most one per core; "
                      "1 = this process)")] = None,
             log_level: LogLevel = "info") -> None:
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

    setup_logging(log_level)
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


@fleet_app.command("provision")
def fleet_provision(out: Annotated[Path, typer.Option(help="output folder")] = Path(".run/demo"),
                    templates: Annotated[Path | None, typer.Option(help="node templates")] = None,
                    nodes: Annotated[int | None, typer.Option(help="synthetic nodes")] = None,
                    broker_port: Annotated[int, typer.Option()] = 1883,
                    broker_host: Annotated[str, typer.Option()] = "127.0.0.1",
                    bind: Annotated[str, typer.Option(help="broker listen address")] = "127.0.0.1"
                    ) -> None:
    """Per-node configs and passwords, and the broker's conf, passwd and ACL."""
    from firmware_config.fleet_gen import write_synthetic_templates
    from firmware_config.provision import provision
    from firmware_config.schema import ConfigError

    if nodes is not None:
        templates = write_synthetic_templates(out / "templates", nodes)
    templates = templates or Path(__file__).parent / "firmware_config" / "examples"
    try:
        fleet = provision(templates, out, broker_port, broker_host, bind)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{len(fleet.node_configs)} nodes provisioned; broker config {fleet.broker_conf}")


@broker_app.command("run")
def broker_run(fleet: Annotated[Path, typer.Option(help="provisioned fleet")] = Path(".run/demo"),
               ) -> None:
    """Run mosquitto in the foreground with the fleet's generated config."""
    import os

    from firmware_config.broker import mosquitto_binary

    conf = fleet / "broker" / "mosquitto.conf"
    if not conf.exists():
        raise fail(f"{conf} does not exist: run `loaxa fleet provision` first")
    os.execv(mosquitto_binary(), ["mosquitto", "-c", str(conf)])


@app.command("demo")
def demo(workdir: Annotated[Path, typer.Option()] = Path(".run/demo"),
         port: Annotated[int, typer.Option(help="controller HTTP port")] = 8000,
         exit_after_welcome: Annotated[bool, typer.Option(help="stop once played")] = False,
         log_level: LogLevel = "warning") -> None:
    """Broker, controller and three simulated nodes; plays a welcome announcement."""
    from devtools.demo import run_demo

    setup_logging(log_level)
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
