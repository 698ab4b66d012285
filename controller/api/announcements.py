from collections import Counter

from fastapi import APIRouter, HTTPException, status

from controller.api.deps import RuntimeDep, SessionDep
from controller.models import Announcement
from controller.schemas import AnnouncementIn, AnnouncementOut, DeliveryOut
from controller.services import announcements as service
from controller.services import fleet

router = APIRouter(prefix="/api/announcements", tags=["announcements"])


def to_out(a: Announcement) -> AnnouncementOut:
    deliveries = [
        DeliveryOut(
            node_id=d.node.node_id, commune=d.node.commune, status=d.status,
            planned_at=d.planned_at, actual_start=d.actual_start, finished_at=d.finished_at,
            duration_s=d.duration_s, detail=d.detail,
            start_offset_ms=round((d.actual_start - d.planned_at).total_seconds() * 1000, 1)
            if d.actual_start else None)
        for d in a.deliveries
    ]
    return AnnouncementOut(
        id=a.id, title=a.title, text=a.text, created_at=a.created_at, start_at=a.start_at,
        priority=a.priority, status=a.status, engine_requested=a.engine_requested,
        engine_used=a.engine_used, fallback_reason=a.fallback_reason,
        media_sha256=a.media_sha256, media_codec=a.media_codec, media_size=a.media_size,
        duration_s=a.duration_s, deliveries=deliveries,
        summary=dict(Counter(d.status for d in deliveries)))


@router.post("", response_model=AnnouncementOut, status_code=status.HTTP_201_CREATED)
def create(body: AnnouncementIn, runtime: RuntimeDep) -> AnnouncementOut:
    """Render the text to speech and schedule it on the chosen nodes (default: all).

    Without ``start_at`` it plays as soon as every node can have the audio (a few
    seconds' lead), all nodes starting at the same instant.
    """
    with runtime.db.session() as s:
        nodes = fleet.list_nodes(s)
        if body.nodes is not None:
            unknown = set(body.nodes) - {n.node_id for n in nodes}
            if unknown:
                raise HTTPException(422, f"unknown nodes: {', '.join(sorted(unknown))}")
            nodes = [n for n in nodes if n.node_id in body.nodes]
        try:
            a = service.create_announcement(
                s, text=body.text, title=body.title, start_at=body.start_at,
                priority=body.priority.value, engine=body.engine, voice=body.voice,
                store=runtime.media, lead=runtime.start_lead, nodes=nodes)
        except service.AnnouncementError as exc:
            raise HTTPException(422, str(exc)) from None
        announcement_id = a.id
        node_pks = [n.id for n in nodes]
        communes = {n.commune for n in nodes}
        media = (a.media_sha256, a.media_size, a.media_codec, a.duration_s)
    runtime.publish_plans(node_pks)
    runtime.broadcast_media(communes, *media)
    return get(announcement_id, runtime)


@router.get("", response_model=list[AnnouncementOut])
def list_all(session: SessionDep) -> list[AnnouncementOut]:
    return [to_out(a) for a in service.list_announcements(session)]


@router.get("/{announcement_id}", response_model=AnnouncementOut)
def get(announcement_id: int, runtime: RuntimeDep) -> AnnouncementOut:
    """The announcement with each node's delivery and playback status."""
    with runtime.db.session() as s:
        a = service.get_announcement(s, announcement_id)
        if a is None:
            raise HTTPException(404, f"announcement {announcement_id} not found")
        return to_out(a)


@router.post("/{announcement_id}/cancel", response_model=AnnouncementOut)
def cancel(announcement_id: int, runtime: RuntimeDep) -> AnnouncementOut:
    """Cancel: every node's plan drops the item (or stops it if it is playing)."""
    with runtime.db.session() as s:
        a = service.get_announcement(s, announcement_id)
        if a is None:
            raise HTTPException(404, f"announcement {announcement_id} not found")
        if a.status == "cancelled":
            raise HTTPException(409, "announcement already cancelled")
        node_pks = [n.id for n in service.cancel_announcement(s, a)]
    runtime.publish_plans(node_pks)
    return get(announcement_id, runtime)
