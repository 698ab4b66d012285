from datetime import UTC, datetime

from fastapi import APIRouter

from controller.api.deps import Leader, RuntimeDep
from controller.api.errors import ErrorCode, api_error, content_refused, refused
from controller.schemas import CommandOut, EmergencyIn, EmergencyOut, StopIn
from controller.services import announcements, emergency
from controller.services.content import ContentError

router = APIRouter(prefix="/api/emergency", tags=["emergency"])


@router.post("", response_model=EmergencyOut, status_code=201)
def send(body: EmergencyIn, user: Leader, runtime: RuntimeDep) -> EmergencyOut:
    """Play at once on the targets (default: every node), preempting whatever plays and
    ignoring quiet hours; ``repeat`` as asked. A leader (or admin) sends it directly."""
    with runtime.db.session(commune=user.commune) as s:
        if body.announcement_id is not None:
            a = announcements.get_announcement(s, body.announcement_id)
            if a is None:
                raise api_error(404, ErrorCode.not_found, "Không tìm thấy bản tin này.")
        else:
            try:
                a = announcements.create_announcement(
                    s, text=body.text or "", title=body.title, engine=body.engine, voice="vi",
                    renderer=runtime.content, actor=user.username)
            except ContentError as exc:
                raise content_refused(exc) from None
        try:
            sent = emergency.start_emergency(s, a, body.targets, body.repeat, body.volume,
                                             user.username)
        except emergency.EmergencyError as exc:
            raise refused(409, exc) from None
        out = EmergencyOut(announcement_id=a.id, schedule_id=sent.schedule.id,
                           item_id=sent.command.item_id or "", nodes=sent.nodes,
                           sent_at=datetime.now(UTC))
    return out


@router.post("/stop", response_model=CommandOut)
def stop(body: StopIn, user: Leader, runtime: RuntimeDep) -> CommandOut:
    """Stop what plays on the targets and end active emergencies."""
    with runtime.db.session(commune=user.commune) as s:
        command, nodes = emergency.stop_emergencies(s, body.targets, user.username)
    return CommandOut(command_id=command.id, nodes=nodes)
