"""The deployment's communes: every account reads the ones it works for (a province
account: all), administrators declare them."""

from __future__ import annotations

from fastapi import APIRouter

from controller.api.deps import Admin, AnyUser, SessionDep
from controller.schemas import CommuneIn, CommuneOut
from controller.services import communes

router = APIRouter(prefix="/api/communes", tags=["communes"])


@router.get("", response_model=list[CommuneOut])
def list_communes(user: AnyUser, session: SessionDep) -> list[CommuneOut]:
    """A commune account: its own commune; a province account: every commune."""
    return [CommuneOut.model_validate(c) for c in communes.list_communes(session, user.commune)]


@router.put("", response_model=CommuneOut)
def put_commune(body: CommuneIn, admin: Admin, session: SessionDep) -> CommuneOut:
    """Declare a commune (code, name, time zone) or change its name or clock."""
    return CommuneOut.model_validate(
        communes.put_commune(session, body.code, body.name, body.timezone, admin.username))
