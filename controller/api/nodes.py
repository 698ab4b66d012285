from fastapi import APIRouter

from controller.api.deps import SessionDep
from controller.schemas import NodeOut
from controller.services import fleet

router = APIRouter(prefix="/api/nodes", tags=["nodes"])


@router.get("", response_model=list[NodeOut])
def list_nodes(session: SessionDep) -> list[NodeOut]:
    """Every node with online/offline (retained status + will) and its last telemetry."""
    return [NodeOut.model_validate(n) for n in fleet.list_nodes(session)]
