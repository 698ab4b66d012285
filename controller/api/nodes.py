from fastapi import APIRouter, HTTPException

from controller.api.deps import AnyUser, RuntimeDep, SessionDep, Staff
from controller.domain import Targets
from controller.schemas import CommandOut, NodeCommandIn, NodeOut
from controller.services import audit, fleet
from controller.services.effects import effects_of
from mqtt_contract import Command, CommandKind

router = APIRouter(prefix="/api/nodes", tags=["nodes"])
STAFF_COMMANDS = {CommandKind.test_tone, CommandKind.volume}


@router.get("", response_model=list[NodeOut])
def list_nodes(user: AnyUser, session: SessionDep) -> list[NodeOut]:
    """Every node with online/offline (retained status + will) and its last telemetry."""
    return [NodeOut.model_validate(n) for n in fleet.list_nodes(session)]


@router.post("/{node_id}/commands", response_model=CommandOut, status_code=202)
def command(node_id: str, body: NodeCommandIn, user: Staff, runtime: RuntimeDep) -> CommandOut:
    """Volume, test tone (staff); resync, stop, reboot (admin). The node replies on MQTT."""
    kind = CommandKind(body.kind)
    if kind not in STAFF_COMMANDS and user.role != "admin":
        raise HTTPException(403, f"{kind.value} needs the admin role")
    with runtime.db.session() as s:
        if node_id not in {n.node_id for n in fleet.list_nodes(s)}:
            raise HTTPException(404, f"node {node_id} not found")
        cmd = Command(kind=kind, volume=body.volume)
        audit.record(s, user.username, f"command_{kind.value}", "node", node_id,
                     volume=body.volume)
        effects_of(s).send_command(Targets.of(nodes=[node_id]), cmd)
    return CommandOut(command_id=cmd.id, nodes=1)


@router.get("/{node_id}", response_model=NodeOut)
def get_node(node_id: str, user: AnyUser, session: SessionDep) -> NodeOut:
    for n in fleet.list_nodes(session):
        if n.node_id == node_id:
            return NodeOut.model_validate(n)
    raise HTTPException(404, f"node {node_id} not found")


