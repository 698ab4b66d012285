"""Remote operations on nodes, with each node's reply: volume, test tone, restart, a new
node config, versions.

One operation is one command (one id) sent to each chosen node on its own ``cmd`` topic
with an MQTT 5 Response Topic (its ``reply`` topic) and Correlation Data (the command id).
:class:`OperationDesk` keeps the operations in flight and the replies that came back, and
knows who may run which kind (:data:`ALLOWED_ROLES`). It lives on the runtime, one per
controller process: an operation is read back on the replica that started it; its audit
record (one per operation, naming the actor) is in the database for good.

A node that has not answered by the operation's deadline is listed as ``no_answer``; a
reply that comes later still counts (the truth is better than a guess).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from controller.db import Database
from controller.models import Node
from controller.security import Role
from controller.services import audit, fleet
from mqtt_contract import (
    DEFAULT_CONFIG_TRIAL_S,
    Command,
    CommandKind,
    Priority,
    Reply,
    ReplyCode,
)

log = logging.getLogger(__name__)
MAX_OPERATIONS = 256
"""Operations remembered per controller process; the oldest are forgotten first."""
REPLY_TIMEOUT_S = 15.0
"""How long a node has to answer an ordinary operation before it is listed as silent."""
CONFIG_REPLY_MARGIN_S = 20.0
"""A config push answers after its trial (and a roll-back reconnect): trial + this."""


class OperationKind(StrEnum):
    volume = "volume"
    test_tone = "test_tone"
    restart = "restart"
    config = "config"
    versions = "versions"


ALLOWED_ROLES: dict[OperationKind, frozenset[Role]] = {
    OperationKind.volume: frozenset({Role.staff, Role.leader, Role.admin}),
    OperationKind.test_tone: frozenset({Role.staff, Role.leader, Role.admin}),
    OperationKind.versions: frozenset({Role.staff, Role.leader, Role.admin}),
    OperationKind.restart: frozenset({Role.leader, Role.admin}),
    OperationKind.config: frozenset({Role.admin}),
}
"""Who may run what: day-to-day checks for editors, a restart for a leader too, a new
config (broker address, credentials, storage) for an admin only. The one owner."""


class AnswerState(StrEnum):
    waiting = "waiting"
    answered = "answered"
    no_answer = "no_answer"


class OperationError(Exception):
    """Refused before anything was sent; ``code`` for programs, ``message`` for people."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class NodeAnswer:
    node_id: str
    name: str
    commune: str
    reply: Reply | None = None
    answered_at: datetime | None = None


@dataclass
class Operation:
    id: str
    kind: OperationKind
    actor: str
    created_at: datetime
    deadline: float
    """time.monotonic() after which a silent node counts as not answering."""
    nodes: dict[str, NodeAnswer]
    params: dict[str, Any] = field(default_factory=dict)

    def state_of(self, answer: NodeAnswer, now: float | None = None) -> AnswerState:
        if answer.reply is not None:
            return AnswerState.answered
        now = time.monotonic() if now is None else now
        return AnswerState.no_answer if now >= self.deadline else AnswerState.waiting

    def finished(self, now: float | None = None) -> bool:
        return all(self.state_of(a, now) != AnswerState.waiting for a in self.nodes.values())


def may_run(role: Role, kind: OperationKind) -> bool:
    return role in ALLOWED_ROLES[kind]


def pick_nodes(session: Session, node_ids: Iterable[str] | None) -> list[Node]:
    """The registered nodes named (all of them for None); an unknown name is an error."""
    nodes = fleet.list_nodes(session)
    if node_ids is None:
        return nodes
    wanted = list(dict.fromkeys(node_ids))
    by_id = {n.node_id: n for n in nodes}
    unknown = [n for n in wanted if n not in by_id]
    if unknown:
        raise OperationError(404, "unknown_node", "Không tìm thấy cụm loa đã chọn.")
    return [by_id[n] for n in wanted]


def config_digest(config: dict[str, Any]) -> str:
    """What the audit log keeps of a pushed config: its hash, never its secrets."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


Send = Callable[[str, str, Command], None]
"""send(commune, node_id, command): publish on the node's cmd topic, asking for a reply."""


class OperationDesk:
    """Operations in flight and their replies (bounded; thread-safe: replies arrive on
    the MQTT thread, requests wait on the API's)."""

    def __init__(self, send: Send, capacity: int = MAX_OPERATIONS,
                 reply_timeout_s: float = REPLY_TIMEOUT_S) -> None:
        self.send, self.capacity, self.reply_timeout_s = send, capacity, reply_timeout_s
        self._ops: OrderedDict[str, Operation] = OrderedDict()
        self._changed = threading.Condition()
        self.unmatched = 0
        """Replies that answered no operation addressed to their node (logged, dropped)."""

    def __len__(self) -> int:
        return len(self._ops)

    def start(self, db: Database, actor: str, role: Role, kind: OperationKind,
              node_ids: Iterable[str] | None, *, volume: int | None = None,
              node_config: dict[str, Any] | None = None,
              trial_s: float | None = None, commune: str | None = None) -> Operation:
        """Check, audit (once, committed before anything is sent) and send one operation
        to the nodes ``node_ids`` (every registered node when None) of ``commune``'s (the
        caller's: controller/scope.py; None: the province's)."""
        if not may_run(role, kind):
            raise OperationError(403, "operation_forbidden",
                                 "Tài khoản của bạn không được thực hiện thao tác này.")
        with db.session(commune=commune) as session:
            targets = pick_nodes(session, node_ids)
            op, cmd = self._prepare(actor, kind, targets, volume, node_config, trial_s)
            audit.record(session, actor, f"operation_{kind.value}", "operation", op.id,
                         nodes=sorted(op.nodes), volume=volume, trial_s=trial_s,
                         config_sha256=config_digest(node_config) if node_config else None)
        with self._changed:
            self._ops[op.id] = op
            while len(self._ops) > self.capacity:
                self._ops.popitem(last=False)
        for answer in op.nodes.values():
            self.send(answer.commune, answer.node_id, cmd)
        log.info("operation %s %s by %s sent to %d nodes", op.id, kind.value, actor,
                 len(op.nodes))
        return op

    def _prepare(self, actor: str, kind: OperationKind, targets: list[Node],
                 volume: int | None, node_config: dict[str, Any] | None,
                 trial_s: float | None) -> tuple[Operation, Command]:
        if not targets:
            raise OperationError(422, "no_nodes", "Chọn ít nhất một cụm loa.")
        if kind == OperationKind.volume and volume is None:
            raise OperationError(422, "volume_missing", "Nhập âm lượng từ 0 đến 100.")
        if kind == OperationKind.config and node_config is None:
            raise OperationError(422, "config_missing", "Nhập cấu hình mới cho cụm loa.")
        cmd = Command(kind=CommandKind(kind.value), volume=volume, node_config=node_config,
                      trial_s=trial_s if kind == OperationKind.config else None,
                      priority=Priority.emergency)
        timeout = self.reply_timeout_s
        if kind == OperationKind.config:
            timeout = (trial_s or DEFAULT_CONFIG_TRIAL_S) + CONFIG_REPLY_MARGIN_S
        op = Operation(cmd.id, kind, actor, datetime.now(UTC), time.monotonic() + timeout,
                       {n.node_id: NodeAnswer(n.node_id, n.name or n.node_id, n.commune)
                        for n in targets},
                       {"volume": volume, "trial_s": trial_s})
        return op, cmd

    def on_reply(self, commune: str, node_id: str, reply: Reply) -> bool:
        """A node's reply (from its own reply topic): kept if it answers an operation
        addressed to that node; anything else is logged and dropped."""
        with self._changed:
            op = self._ops.get(reply.command_id)
            answer = op.nodes.get(node_id) if op else None
            if answer is None or answer.commune != commune:
                self.unmatched += 1
                log.info("reply from %s/%s to %s matches no operation: dropped", commune,
                         node_id, reply.command_id)
                return False
            if answer.reply is None:
                answer.reply, answer.answered_at = reply, datetime.now(UTC)
            self._changed.notify_all()
        log.info("operation %s: %s answered ok=%s %s", reply.command_id, node_id, reply.ok,
                 reply.detail[:200])
        return True

    def get(self, operation_id: str) -> Operation | None:
        with self._changed:
            return self._ops.get(operation_id)

    def wait(self, op: Operation, wait_s: float) -> Operation:
        """Wait until every node answered, the deadline passed, or ``wait_s`` is over."""
        until = min(time.monotonic() + max(0.0, wait_s), op.deadline)
        with self._changed:
            while not op.finished():
                left = until - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
        return op


# ------------------------------------------------------------------ what people read

DONE_TEXT = {
    OperationKind.volume: "Đã đặt âm lượng {volume}",
    OperationKind.test_tone: "Đang phát tiếng thử",
    OperationKind.restart: "Đang khởi động lại phần mềm",
    OperationKind.config: "Đã áp dụng cấu hình mới",
}
CODE_TEXT = {
    ReplyCode.invalid: "Lệnh hoặc cấu hình không hợp lệ; cụm loa giữ nguyên như cũ",
    ReplyCode.refused: "Cụm loa từ chối thao tác này",
    ReplyCode.busy: "Cụm loa đang thử một cấu hình khác; hãy thử lại sau ít phút",
    ReplyCode.failed: "Cụm loa không thực hiện được thao tác",
    ReplyCode.rolled_back: "Cấu hình mới không kết nối được; cụm loa đã quay lại cấu hình cũ",
}
STATE_TEXT = {AnswerState.waiting: "Đang chờ trả lời…",
              AnswerState.no_answer: "Không trả lời"}


def answer_text(op: Operation, answer: NodeAnswer, now: float | None = None) -> str:
    """One node's outcome in Vietnamese, for the pages: no ids, hosts or error text."""
    state = op.state_of(answer, now)
    reply = answer.reply
    if reply is None:
        return STATE_TEXT[state]
    code = reply.code or (ReplyCode.done if reply.ok else ReplyCode.failed)
    if code != ReplyCode.done:
        return CODE_TEXT[code]
    if op.kind == OperationKind.versions:
        data = reply.data or {}
        parts = [f"Phần mềm {data.get('software', '?')}"]
        if data.get("config_sha256"):
            parts.append(f"cấu hình bản {str(data['config_sha256'])[:8]}")
        if data.get("python"):
            parts.append(f"Python {data['python']}")
        if data.get("os"):
            parts.append(str(data["os"]))
        return " · ".join(parts)
    return DONE_TEXT[op.kind].format(**op.params)
