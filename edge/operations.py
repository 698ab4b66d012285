"""Remote operations on a node: report versions, restart the agent, try a new config.

The command part (:mod:`edge.commands`) calls these after it has accepted a command; each
returns an :class:`~edge.commands.Outcome` that becomes the node's ``Reply``, except a
config push, which answers later: only once the agent has reconnected with the new
config (kept) or, failing that within the trial time, with the old one (rolled back).

A config push never leaves the node without a config it can start from: the new file is
validated with the node schema first, the old file is copied beside it
(``node.yaml.previous``) and the new one replaces it in one ``rename``; a marker
(``node.yaml.trial``) says a trial is under way, so an agent restarted in the middle of
one tries again and rolls back the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from edge.commands import Outcome
from edge.loop import Reactor, Timer
from firmware_config.schema import ConfigError, NodeConfig, load_node_config, parse_node_config
from mqtt_contract import (
    CONTRACT_VERSION,
    DEFAULT_CONFIG_TRIAL_S,
    SOFTWARE_VERSION,
    Command,
    Reply,
    ReplyCode,
)

log = logging.getLogger(__name__)
RESTART_DELAY_S = 0.3
"""The reply goes out before the agent stops (the stop flushes what is queued anyway)."""


class TrialState(StrEnum):
    idle = "idle"
    trying = "trying"  # running on the new config, waiting for the broker to accept it
    rolling_back = "rolling_back"  # the old config is back, waiting to reconnect with it


@dataclass
class Trial:
    command_id: str
    old: NodeConfig
    new: NodeConfig
    started: float
    reply_properties: Any = None
    resumed: bool = False
    """Found at start: the agent already runs on the whole new config."""


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename (same folder, fsynced, same mode): a
    power cut leaves the old file or the new one, never half of either."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def os_name() -> str:
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME") or platform.platform()
    except OSError:
        return platform.platform()


class NodeOperations:
    """Versions, restart and config trials for one agent (runs on the agent's loop).

    ``reconnect(config)`` swaps the agent's MQTT link for one made from ``config``;
    ``send_reply(reply, properties)`` publishes a late reply; ``restart`` (None when no
    supervisor will start the agent again) makes the agent exit with
    :data:`mqtt_contract.RESTART_EXIT_CODE`.
    """

    def __init__(self, loop: Reactor, node: str, config_path: Path | None,
                 current: Callable[[], NodeConfig], reconnect: Callable[[NodeConfig], None],
                 send_reply: Callable[[Reply, Any], None],
                 restart: Callable[[], None] | None,
                 plan_version: Callable[[], int | None]) -> None:
        self.loop, self.node, self.config_path = loop, node, config_path
        self.current, self.reconnect, self.send_reply = current, reconnect, send_reply
        self.restart_hook, self.plan_version = restart, plan_version
        self.state = TrialState.idle
        self.trial: Trial | None = None
        self._timer: Timer | None = None
        self._done_ids: dict[str, Outcome] = {}
        """Outcomes of the last config commands, so a redelivered one is not tried twice."""

    # paths -------------------------------------------------------------------------------
    def _sibling(self, suffix: str) -> Path:
        assert self.config_path is not None
        return self.config_path.with_name(self.config_path.name + suffix)

    @property
    def previous_path(self) -> Path:
        return self._sibling(".previous")

    @property
    def marker_path(self) -> Path:
        return self._sibling(".trial")

    # versions ----------------------------------------------------------------------------
    def versions(self) -> Outcome:
        """What runs here: package version, contract, config hash, plan, Python, OS."""
        if self.config_path is not None and self.config_path.is_file():
            config_hash = hashlib.sha256(self.config_path.read_bytes()).hexdigest()
        else:  # an agent started from a config object (tests, the simulator)
            config_hash = hashlib.sha256(
                self.current().model_dump_json().encode()).hexdigest()
        return Outcome(True, code=ReplyCode.done, data={
            "software": SOFTWARE_VERSION, "contract": CONTRACT_VERSION,
            "config_sha256": config_hash, "plan_version": self.plan_version(),
            "python": platform.python_version(), "os": os_name()})

    # restart -----------------------------------------------------------------------------
    def restart(self) -> Outcome:
        if self.restart_hook is None:
            return Outcome(False, "this agent runs without a supervisor: not restarting",
                           ReplyCode.refused)
        log.warning("restart asked by the controller: exiting for the supervisor")
        self.loop.call_later(RESTART_DELAY_S, self.restart_hook)
        return Outcome(True, "restarting", ReplyCode.done)

    # config trial ------------------------------------------------------------------------
    def push_config(self, cmd: Command) -> Outcome | None:
        """Validate and start trying ``cmd.node_config``; None = the reply comes later."""
        if cmd.id in self._done_ids:
            return self._done_ids[cmd.id]
        if self.trial is not None:
            return Outcome(False, "a config trial is under way", ReplyCode.busy)
        if self.config_path is None:
            return Outcome(False, "this agent has no config file", ReplyCode.refused)
        if cmd.node_config is None:
            return Outcome(False, "config command without node_config", ReplyCode.invalid)
        try:
            new = self._validate(cmd.node_config)
        except ConfigError as exc:
            log.warning("pushed config refused: %s", exc)
            return self._remember(cmd.id, Outcome(False, str(exc)[:500], ReplyCode.invalid))
        trial_s = cmd.trial_s or DEFAULT_CONFIG_TRIAL_S
        self.trial = Trial(cmd.id, self.current(), new, time.monotonic())
        self._write_new(cmd.node_config, cmd.id, trial_s)
        # after this handler returns, so the command's PUBACK leaves on the old link
        self.loop.call_soon(self._begin, trial_s)
        return None

    def answer_later(self, command_id: str, properties: Any) -> None:
        """The request's reply properties (Correlation Data) for the late reply: only for
        the command that started the trial (a refused command must not redirect it)."""
        if self.trial is not None and self.trial.command_id == command_id:
            self.trial.reply_properties = properties

    def _validate(self, data: dict[str, Any]) -> NodeConfig:
        assert self.config_path is not None
        new = parse_node_config(data, "pushed config", self.config_path.parent.resolve())
        now = self.current()
        if (new.node_id, new.commune) != (now.node_id, now.commune):
            raise ConfigError("pushed config: node_id and commune must stay "
                              f"{now.node_id}/{now.commune}")
        try:
            new.mqtt.read_password()
        except OSError as exc:
            raise ConfigError(f"pushed config: mqtt password file unreadable ({exc})"
                              ) from None
        return new

    def _write_new(self, data: dict[str, Any], command_id: str, trial_s: float) -> None:
        assert self.config_path is not None
        write_atomically(self.previous_path, self.config_path.read_bytes())
        write_atomically(self.marker_path, json.dumps(
            {"command_id": command_id, "trial_s": trial_s}).encode())
        write_atomically(self.config_path, yaml.safe_dump(
            data, allow_unicode=True, sort_keys=False).encode())
        log.warning("new config written to %s (old one kept in %s); trying it for %.0f s",
                    self.config_path, self.previous_path, trial_s)

    def _begin(self, trial_s: float) -> None:
        assert self.trial is not None
        self.state = TrialState.trying
        self._timer = self.loop.call_later(trial_s, self._roll_back)
        self.reconnect(self.trial.new)

    def resume(self) -> bool:
        """At start: a trial marker means the agent stopped in the middle of a trial and
        now runs on the new config; try it again for the same time, then roll back."""
        if self.config_path is None or not self.marker_path.exists():
            return False
        try:
            marker = json.loads(self.marker_path.read_text())
            old = load_node_config(self.previous_path)
            trial_s = float(marker.get("trial_s", DEFAULT_CONFIG_TRIAL_S))
        except (OSError, ValueError, ConfigError) as exc:
            log.error("config trial marker unusable (%s): keeping the current config", exc)
            self.marker_path.unlink(missing_ok=True)
            return False
        log.warning("resuming an unfinished config trial (%.0f s)", trial_s)
        self.trial = Trial(str(marker.get("command_id", "")), old, self.current(),
                           time.monotonic(), resumed=True)
        self.state = TrialState.trying
        self._timer = self.loop.call_later(trial_s, self._roll_back)
        return True

    def _roll_back(self) -> None:
        trial = self.trial
        if trial is None or self.state != TrialState.trying:
            return
        log.error("the new config did not connect within the trial: restoring the old one")
        os.replace(self.previous_path, self.config_path)  # type: ignore[arg-type]
        self.marker_path.unlink(missing_ok=True)
        self.state = TrialState.rolling_back
        self.reconnect(trial.old)

    def link_up(self) -> None:
        """The agent (re)connected: a trial is kept, or a roll-back is complete."""
        trial = self.trial
        if trial is None:
            return
        if self.state == TrialState.trying:
            if self._timer:
                self._timer.cancel()
            self.marker_path.unlink(missing_ok=True)
            restart = (self.restart_hook is not None and not trial.resumed
                       and self._beyond_link(trial))
            outcome = Outcome(True, f"new config in use after "
                              f"{time.monotonic() - trial.started:.1f} s"
                              + ("; restarting to apply the rest" if restart else ""),
                              ReplyCode.done)
            log.info("the new config connected: kept")
            if restart:  # the reply goes first; the supervisor starts us on the new file
                self.loop.call_later(RESTART_DELAY_S, self.restart_hook)  # type: ignore[arg-type]
        elif self.state == TrialState.rolling_back:
            outcome = Outcome(False, "the new config did not connect within the trial; "
                              "the previous config is back", ReplyCode.rolled_back)
        else:
            return
        self.trial, self.state = None, TrialState.idle
        self._remember(trial.command_id, outcome)
        self.send_reply(Reply(node=self.node, command_id=trial.command_id, ok=outcome.ok,
                              detail=outcome.detail, code=outcome.code),
                        trial.reply_properties)

    @staticmethod
    def _beyond_link(trial: Trial) -> bool:
        """Does the new config change more than the MQTT link (which is live already)?"""
        return trial.old.model_dump(exclude={"mqtt"}) != trial.new.model_dump(exclude={"mqtt"})

    def _remember(self, command_id: str, outcome: Outcome) -> Outcome:
        self._done_ids[command_id] = outcome
        while len(self._done_ids) > 32:
            self._done_ids.pop(next(iter(self._done_ids)))
        return outcome
