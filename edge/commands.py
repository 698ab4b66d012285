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
from typing import TYPE_CHECKING, Any

from edge.scheduler import Job, LocalScheduler
from edge.store import NodeStore
from edge.trust import Gate
from mqtt_contract import Command, CommandKind, ContractError, MediaRef, Reply, ReplyCode

if TYPE_CHECKING:
    from edge.live import LivePlayer
    from edge.operations import NodeOperations

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str = ""
    code: ReplyCode | None = None
    data: dict[str, Any] | None = None


class CommandHandler:
    def __init__(self, node: str, store: NodeStore, scheduler: LocalScheduler,
                 want_media: Callable[[MediaRef], None], put_media: Callable[[MediaRef, Path],
                                                                            object],
                 resync: Callable[[], None], tone_dir: Path, gate: Gate,
                 operations: NodeOperations | None = None,
                 live: LivePlayer | None = None) -> None:
        self.node, self.store, self.scheduler = node, store, scheduler
        self.gate = gate
        self.want_media, self.put_media, self.resync = want_media, put_media, resync
        self.tone_dir = tone_dir
        self.operations = operations
        self.live = live

    def handle(self, cmd: Command) -> Reply | None:
        """The reply to ``cmd``, or None: refused by the gate (edge/trust.py checks its
        signature, address, expiry and order; it logs and counts the refusal), or answered
        later (a config push answers once the agent has reconnected or rolled back)."""
        if not self.gate.admit_command(cmd, f"command {cmd.kind.value} {cmd.id}"):
            return None
        log.info("command %s %s received", cmd.kind.value, cmd.item_id or cmd.id)
        outcome = self._run(cmd)
        if outcome is None:
            return None
        code = outcome.code or (ReplyCode.done if outcome.ok else ReplyCode.failed)
        return Reply(node=self.node, command_id=cmd.id, ok=outcome.ok, detail=outcome.detail,
                     code=code, data=outcome.data)

    def _run(self, cmd: Command) -> Outcome | None:
        if cmd.kind in (CommandKind.restart, CommandKind.config, CommandKind.versions):
            return self._operation(cmd)
        if cmd.kind == CommandKind.play:
            return self._play(cmd)
        if cmd.kind in (CommandKind.live_start, CommandKind.live_stop):
            return self._live(cmd)
        if cmd.kind == CommandKind.stop:
            live_stopped = self.live.stop(None, drain=False) if self.live else False
            stopped = self.scheduler.stop_playback() or live_stopped
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
        return Outcome(False, "reboot is disabled on this node (run under systemd to allow)",
                       ReplyCode.refused)

    def _operation(self, cmd: Command) -> Outcome | None:
        """Remote operations (edge/operations.py): versions, restart, config push."""
        ops = self.operations
        if ops is None:
            return Outcome(False, f"{cmd.kind.value} is not available here", ReplyCode.refused)
        if cmd.kind == CommandKind.versions:
            return ops.versions()
        if cmd.kind == CommandKind.restart:
            return ops.restart()
        return ops.push_config(cmd)

    def _live(self, cmd: Command) -> Outcome:
        """Open or end a live session (edge/live.py)."""
        if self.live is None:
            return Outcome(False, "no live player on this node", ReplyCode.refused)
        if cmd.kind == CommandKind.live_stop:
            return Outcome(True, "ended" if self.live.stop(cmd.item_id) else "not on here")
        if cmd.live is None:
            raise ContractError("live_start command without its session")
        ok, detail = self.live.start(cmd.live)
        return Outcome(ok, detail)

    def _play(self, cmd: Command) -> Outcome:
        if cmd.media is None:
            raise ContractError("play command without media")
        self.want_media(cmd.media)
        # no title: telemetry then reports the item id, which the controller turns into
        # the announcement's title (a word like "command" would reach its pages)
        self.scheduler.submit(Job(cmd.item_id or cmd.id, cmd.media, time.time(), cmd.priority,
                                  "", cmd.volume, cmd.repeat, False))
        return Outcome(True)

    def _test_tone(self, cmd: Command) -> Outcome:
        from edge.test_tone import test_tone_media

        ref, path = test_tone_media(self.tone_dir)
        self.put_media(ref, path)
        self.scheduler.submit(Job(cmd.id, ref, time.time(), cmd.priority, "test tone",
                                  cmd.volume, 1, True))
        return Outcome(True)
