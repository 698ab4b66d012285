from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException

from controller.api.deps import Leader, RuntimeDep
from controller.schemas import CommandOut, EmergencyIn, EmergencyOut, StopIn
from controller.services import announcements, emergency
from mqtt_contract import Command, CommandKind

router = APIRouter(prefix="/api/emergency", tags=["emergency"])


@router.post("", response_model=EmergencyOut, status_code=201)
def send(body: EmergencyIn, user: Leader, runtime: RuntimeDep) -> EmergencyOut:
    """Play at once on the targets (default: every node), preempting whatever plays and
    ignoring quiet hours; ``repeat`` as asked. A leader (or admin) sends it directly."""
    targets = body.targets.model_dump()
    with runtime.db.session() as s:
        if body.announcement_id is not None:
            a = announcements.get_announcement(s, body.announcement_id)
            if a is None:
                raise HTTPException(404, f"announcement {body.announcement_id} not found")
        else:
            a = announcements.create_announcement(
                s, text=body.text or "", title=body.title, engine=body.engine, voice="vi",
                renderer=runtime.content, actor=user.username)
        try:
            schedule, command = emergency.start_emergency(s, a, targets, body.repeat,
                                                          body.volume, user.username)
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        announcement_id, schedule_id = a.id, schedule.id
    runtime.broadcast_media(announcement_id, [targets])
    nodes = runtime.send_commands(targets, command)
    runtime.publish_plans_soon([targets])
    return EmergencyOut(announcement_id=announcement_id, schedule_id=schedule_id,
                        item_id=command.item_id or "", nodes=nodes, sent_at=datetime.now(UTC))


@router.post("/stop", response_model=CommandOut)
def stop(body: StopIn, user: Leader, runtime: RuntimeDep) -> CommandOut:
    """Stop what plays on the targets and end active emergencies."""
    with runtime.db.session() as s:
        stopped = emergency.stop_emergencies(s, user.username)
    command = Command(kind=CommandKind.stop)
    nodes = runtime.send_commands(body.targets.model_dump(), command)
    if stopped:
        runtime.publish_plans(stopped)
    return CommandOut(command_id=command.id, nodes=nodes)
