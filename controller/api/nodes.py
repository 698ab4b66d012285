"""Nodes and remote operations on them (volume, test tone, restart, config, versions).

An operation waits up to ``wait_s`` for every node's reply, then returns what it has:
each node ``answered`` (with its outcome), ``waiting`` (ask again with
``GET /api/operations/{id}``) or, past the operation's deadline, ``no_answer``.
Errors are ``{"detail": {"code": …, "message": …}}``: a stable code for programs, a
Vietnamese message for people.
"""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import APIRouter, HTTPException
from pydantic import ValidationError

from controller.api.deps import AnyUser, NodeId, RuntimeDep, SessionDep, Staff
from controller.domain import Targets
from controller.schemas import (
    CommandOut,
    NodeAnswerOut,
    NodeCommandIn,
    NodeOut,
    OperationIn,
    OperationOut,
)
from controller.services import audit, fleet
from controller.services.effects import effects_of
from controller.services.operations import (
    Operation,
    OperationError,
    OperationKind,
    answer_text,
)
from firmware_config.schema import NodeConfig
from mqtt_contract import Command, CommandKind

router = APIRouter(tags=["nodes"])


def _error(status: int, code: str, message: str) -> HTTPException:
    return HTTPException(status, {"code": code, "message": message})


@router.get("/api/nodes", response_model=list[NodeOut])
def list_nodes(user: AnyUser, session: SessionDep) -> list[NodeOut]:
    """Every node with online/offline (retained status + will) and its last telemetry."""
    return [NodeOut.model_validate(n) for n in fleet.list_nodes(session)]


@router.post("/api/nodes/{node_id}/commands", response_model=CommandOut, status_code=202)
def command(node_id: NodeId, body: NodeCommandIn, user: Staff, runtime: RuntimeDep) -> CommandOut:
    """Volume, test tone (staff); resync, stop, reboot (admin), without waiting: the
    volume and test tone replies are kept (``GET /api/operations/{command_id}``)."""
    kind = CommandKind(body.kind)
    if kind.value in OperationKind.__members__:
        op = _start(runtime, user, OperationIn(kind=kind.value, nodes=[node_id],
                                               volume=body.volume))
        return CommandOut(command_id=op.id, nodes=len(op.nodes))
    if user.role != "admin":
        raise _error(403, "operation_forbidden",
                     "Tài khoản của bạn không được thực hiện thao tác này.")
    with runtime.db.session(commune=user.commune) as s:
        if node_id not in {n.node_id for n in fleet.list_nodes(s)}:
            raise _error(404, "unknown_node", "Không tìm thấy cụm loa đã chọn.")
        cmd = Command(kind=kind, volume=body.volume)
        audit.record(s, user.username, f"command_{kind.value}", "node", node_id,
                     volume=body.volume)
        effects_of(s).send_command(Targets.of(nodes=[node_id]), cmd)
    return CommandOut(command_id=cmd.id, nodes=1)


@router.post("/api/operations", response_model=OperationOut)
def run_operation(body: OperationIn, user: Staff, runtime: RuntimeDep) -> OperationOut:
    """Run an operation on ``nodes`` (or ``all``) and return each node's reply: waits
    up to ``wait_s``. Who may run which kind: controller/services/operations.py."""
    op = _start(runtime, user, body)
    return _out(runtime.operations.wait(op, body.wait_s))


@router.get("/api/operations/{operation_id}", response_model=OperationOut)
def get_operation(operation_id: str, user: Staff, runtime: RuntimeDep) -> OperationOut:
    """An operation's replies so far (kept in this controller's memory, newest 256)."""
    op = runtime.operations.get(operation_id)
    if op is None or (user.commune is not None and any(  # another commune's nodes
            a.commune != user.commune for a in op.nodes.values())):
        raise _error(404, "unknown_operation", "Không tìm thấy thao tác này (có thể đã quá cũ).")
    return _out(op)


@router.get("/api/nodes/{node_id}", response_model=NodeOut)
def get_node(node_id: NodeId, user: AnyUser, session: SessionDep) -> NodeOut:
    for n in fleet.list_nodes(session):
        if n.node_id == node_id:
            return NodeOut.model_validate(n)
    raise _error(404, "unknown_node", "Không tìm thấy cụm loa đã chọn.")


def _start(runtime: Any, user: Any, body: OperationIn) -> Operation:
    kind = OperationKind(body.kind)
    node_config = _checked_config(body) if kind == OperationKind.config else None
    if not body.all and not body.nodes:
        raise _error(422, "no_nodes", "Chọn ít nhất một cụm loa.")
    try:
        return runtime.operations.start(
            runtime.db, user.username, user.role, kind, None if body.all else body.nodes,
            volume=body.volume, node_config=node_config,
            trial_s=body.trial_s if kind == OperationKind.config else None,
            commune=user.commune)
    except OperationError as exc:
        raise _error(exc.status, exc.code, exc.message) from None


def _checked_config(body: OperationIn) -> dict[str, Any]:
    """The pushed config as a mapping, checked against the node schema here first (the
    node checks again): a config goes to one node, and must be that node's."""
    if body.all or len(body.nodes) != 1:
        raise _error(422, "config_one_node", "Cấu hình mới chỉ gửi cho từng cụm loa một.")
    try:
        data = yaml.safe_load(body.config_yaml or "")
    except yaml.YAMLError:
        raise _error(422, "config_not_yaml", "Cấu hình không đọc được (không phải YAML).") \
            from None
    if not isinstance(data, dict):
        raise _error(422, "config_missing", "Nhập cấu hình mới cho cụm loa.")
    try:
        config = NodeConfig.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(sorted({".".join(str(p) for p in e["loc"]) or "?"
                                   for e in exc.errors()}))
        raise _error(422, "config_invalid", f"Cấu hình không hợp lệ ở mục: {fields}.") \
            from None
    if config.node_id != body.nodes[0]:
        raise _error(422, "config_other_node", "Cấu hình này là của một cụm loa khác.")
    return data


def _out(op: Operation) -> OperationOut:
    nodes = []
    for answer in op.nodes.values():
        reply = answer.reply
        nodes.append(NodeAnswerOut(
            node_id=answer.node_id, name=answer.name, state=op.state_of(answer).value,
            ok=reply.ok if reply else None,
            code=(reply.code.value if reply.code else None) if reply else None,
            message=answer_text(op, answer), data=reply.data if reply else None,
            answered_at=answer.answered_at))
    return OperationOut(id=op.id, kind=op.kind.value, actor=op.actor,
                        created_at=op.created_at, finished=op.finished(), nodes=nodes)
