"""Commands: what the controller asks a node to do now, and the node's reply.

Each command carries an id; the reply carries it back on the node's own ``reply`` topic,
with the request's MQTT 5 Correlation Data. A play command is a job for the scheduler
(the same id as its plan item, so an emergency plays once); the others change a setting
or ask the agent to resync.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.scheduler import Job, LocalScheduler
from edge.store import NodeStore
from edge.trust import Gate
from mqtt_contract import Command, CommandKind, ContractError, MediaRef, Reply

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str = ""


class CommandHandler:
    def __init__(self, node: str, store: NodeStore, scheduler: LocalScheduler,
                 want_media: Callable[[MediaRef], None], put_media: Callable[[MediaRef, Path],
                                                                            object],
                 resync: Callable[[], None], tone_dir: Path, gate: Gate) -> None:
        self.node, self.store, self.scheduler = node, store, scheduler
        self.gate = gate
        self.want_media, self.put_media, self.resync = want_media, put_media, resync
        self.tone_dir = tone_dir

    def handle(self, cmd: Command) -> Reply | None:
        """Run ``cmd`` if its signature, address, expiry and order hold (edge/trust.py);
        a refused command gets no reply (the gate logs and counts it)."""
        if not self.gate.admit_command(cmd, f"command {cmd.kind.value} {cmd.id}"):
            return None
        log.info("command %s %s received", cmd.kind.value, cmd.item_id or cmd.id)
        outcome = self._run(cmd)
        return Reply(node=self.node, command_id=cmd.id, ok=outcome.ok, detail=outcome.detail)

    def _run(self, cmd: Command) -> Outcome:
        if cmd.kind == CommandKind.play:
            return self._play(cmd)
        if cmd.kind == CommandKind.stop:
            stopped = self.scheduler.stop_playback()
            return Outcome(stopped, "stopped" if stopped else "nothing was playing")
        if cmd.kind == CommandKind.volume:
            if cmd.volume is None:
                raise ContractError("volume command without volume")
            self.store.set_setting("volume", str(cmd.volume))
            return Outcome(True)
        if cmd.kind == CommandKind.test_tone:
            return self._test_tone(cmd)
        if cmd.kind == CommandKind.resync:
            self.resync()
            return Outcome(True)
        return Outcome(False, "reboot is disabled on this node (run under systemd to allow)")

    def _play(self, cmd: Command) -> Outcome:
        if cmd.media is None:
            raise ContractError("play command without media")
        self.want_media(cmd.media)
        self.scheduler.submit(Job(cmd.item_id or cmd.id, cmd.media, time.time(), cmd.priority,
                                  "command", cmd.volume, cmd.repeat, False))
        return Outcome(True)

    def _test_tone(self, cmd: Command) -> Outcome:
        from edge.test_tone import test_tone_media

        ref, path = test_tone_media(self.tone_dir)
        self.put_media(ref, path)
        self.scheduler.submit(Job(cmd.id, ref, time.time(), cmd.priority, "test tone",
                                  cmd.volume, 1, True))
        return Outcome(True)
