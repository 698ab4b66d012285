from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse

from controller.api.deps import Officer, RuntimeDep, SessionDep
from controller.schemas import AlertOut
from controller.services import alerts as service

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


@router.get("", response_model=list[AlertOut])
def list_alerts(user: Officer, session: SessionDep, node: str | None = None,
                camera: str | None = None,
                kind: str | None = None, state: str | None = None,
                since: datetime | None = None, until: datetime | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AlertOut]:
    """Camera alerts, newest first, filtered by node, camera, kind, state and time."""
    rows = service.list_alerts(session, node=node, camera=camera, kind=kind, state=state,
                               since=since, until=until, limit=limit)
    return [AlertOut.from_record(r) for r in rows]


@router.get("/{alert_id}/snapshot", response_class=FileResponse,
            responses={200: {"content": {"image/jpeg": {}}}})
def snapshot(alert_id: str, user: Officer, session: SessionDep,
             runtime: RuntimeDep) -> FileResponse:
    """The alert's JPEG snapshot, boxes drawn."""
    record = service.get_alert(session, alert_id)
    if record is None or record.snapshot_sha256 is None:
        raise HTTPException(404, "no such alert snapshot")
    return FileResponse(runtime.media.path(record.snapshot_sha256, "jpg"),
                        media_type="image/jpeg")
