"""Editing and deleting announcements, the leader's reason, several times in one schedule,
and what the speaker will really say: the rules behind the staff pages, through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.models import PlaybackLog
from tests.conftest import make_user
from tests.test_audit_once import tone_wav


def later(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def draft(client, headers, text: str = "Họp thôn tối nay.") -> dict:  # type: ignore[no-untyped-def]
    r = client.post("/api/announcements", json={"text": text, "engine": "espeak-ng"},
                    headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_who_may_delete_what(controller):
    staff = make_user(controller, "bientap", "staff")
    other = make_user(controller, "bientap2", "staff")
    leader = make_user(controller, "lanhdao", "leader")
    mine = draft(controller, staff)
    r = controller.delete(f"/api/announcements/{mine['id']}", headers=other)
    assert r.status_code == 403 and r.json()["code"] == "announcement_not_yours"
    assert r.json()["message"].startswith("Chỉ người soạn được xoá")
    assert controller.delete(f"/api/announcements/{mine['id']}", headers=staff
                             ).status_code == 204
    assert controller.get(f"/api/announcements/{mine['id']}").status_code == 404

    # approved and scheduled: no longer the author's to delete; a leader may (never aired)
    sched = draft(controller, staff, "Tiêm phòng cho trẻ.")
    assert controller.post(f"/api/announcements/{sched['id']}/submit", json={},
                           headers=staff).status_code == 200
    assert controller.post(f"/api/announcements/{sched['id']}/approve", json={},
                           headers=leader).status_code == 200
    r = controller.post("/api/schedules", headers=staff, json={
        "announcement_id": sched["id"], "targets": {"nodes": ["node-1"]},
        "timing": {"kind": "once", "start_at": later(30)}})
    assert r.status_code == 201, r.text
    schedule_id = r.json()["id"]
    assert controller.delete(f"/api/announcements/{sched['id']}", headers=staff
                             ).status_code == 403
    # once a node reported playing it, it stays for the log (cancel instead), even for a leader
    with controller.runtime.db.session() as s:
        s.add(PlaybackLog(report_id="r-1", commune="xa-demo", node_id="node-1",
                          item_id=f"s{schedule_id}-1700000000", event="finished",
                          planned_at=datetime.now(UTC), actual_at=datetime.now(UTC)))
    r = controller.delete(f"/api/announcements/{sched['id']}", headers=leader)
    assert r.status_code == 409 and "nhật ký phát" in r.json()["message"]
    with controller.runtime.db.session() as s:
        s.query(PlaybackLog).filter(PlaybackLog.report_id == "r-1").delete()
    assert controller.delete(f"/api/announcements/{sched['id']}", headers=leader
                             ).status_code == 204
    assert controller.get(f"/api/schedules/{schedule_id}").status_code == 404


def test_editing_sends_staff_changes_back_for_approval_and_keeps_a_recording(controller):
    staff = make_user(controller, "bientap", "staff")
    leader = make_user(controller, "lanhdao", "leader")
    up = controller.post("/api/uploads", headers=staff,
                         files={"file": ("loi-moi.wav", tone_wav(1.0), "audio/wav")})
    assert up.status_code == 201, up.text
    r = controller.post("/api/announcements", headers=staff, json={
        "engine": "espeak-ng", "title": "Mời họp", "items": [
            {"kind": "chime"}, {"kind": "speech", "text": "Mời bà con dự họp."},
            {"kind": "recording", "upload": up.json()["sha256"]}, {"kind": "outro"}]})
    assert r.status_code == 201, r.text
    a = r.json()
    for step, who in (("submit", staff), ("approve", leader)):
        assert controller.post(f"/api/announcements/{a['id']}/{step}", json={},
                               headers=who).status_code == 200
    r = controller.patch(f"/api/announcements/{a['id']}", headers=staff,
                         json={"text": "Mời bà con dự họp lúc 19h.", "engine": "espeak-ng"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "submitted"  # back in the leaders' queue
    assert r.json()["media_sha256"] != a["media_sha256"]
    with controller.runtime.db.session() as s:
        from controller.services.announcements import get_announcement

        items = get_announcement(s, a["id"]).items
    assert [i["kind"] for i in items] == ["chime", "speech", "recording", "outro"]
    assert items[1]["text"] == "Mời bà con dự họp lúc 19h."

    assert controller.post(f"/api/announcements/{a['id']}/approve", json={},
                           headers=leader).status_code == 200
    r = controller.patch(f"/api/announcements/{a['id']}", headers=leader,
                         json={"text": "Mời bà con dự họp lúc 19h30.", "engine": "espeak-ng"})
    assert r.json()["status"] == "approved", "a leader's edit carries the leader's approval"


def test_a_leader_sends_back_with_a_reason_the_author_then_sees(controller):
    from controller.services import approval
    from controller.services.announcements import get_announcement

    staff = make_user(controller, "bientap", "staff")
    leader = make_user(controller, "lanhdao", "leader")
    a = draft(controller, staff)
    controller.post(f"/api/announcements/{a['id']}/submit", json={}, headers=staff)
    r = controller.post(f"/api/announcements/{a['id']}/reject", json={"note": ""},
                        headers=leader)
    assert r.status_code == 422 and r.json()["code"] == "reason_required"
    r = controller.post(f"/api/announcements/{a['id']}/reject",
                        json={"note": "Ghi rõ giờ họp."}, headers=leader)
    assert r.json()["status"] == "draft"
    with controller.runtime.db.session() as s:
        review = approval.returned_notes(s, [get_announcement(s, a["id"])])[a["id"]]
    assert (review.actor, review.note) == ("lanhdao", "Ghi rõ giờ họp.")
    controller.post(f"/api/announcements/{a['id']}/submit", json={}, headers=staff)
    controller.post(f"/api/announcements/{a['id']}/reject", json={"note": "Thêm địa điểm."},
                    headers=leader)
    with controller.runtime.db.session() as s:
        assert approval.returned_notes(s, [get_announcement(s, a["id"])])[a["id"]].note \
            == "Thêm địa điểm."
    controller.post(f"/api/announcements/{a['id']}/submit", json={}, headers=staff)
    with controller.runtime.db.session() as s:
        assert approval.returned_notes(s, [get_announcement(s, a["id"])]) == {}


def test_several_times_in_one_schedule(controller):
    a = draft(controller, {})
    day = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    r = controller.post("/api/schedules", json={
        "announcement_id": a["id"], "targets": {"nodes": ["node-2"]}, "timing": {
            "kind": "rrule", "rule": "FREQ=DAILY", "start_at": f"{day}T00:00:00+07:00",
            "times": ["06:00", "17:30"]}})
    assert r.status_code == 201, r.text
    upcoming = [datetime.fromisoformat(t).astimezone().strftime("%H:%M")
                for t in r.json()["next_occurrences"][:4]]
    assert len(upcoming) == 4 and len(set(upcoming)) == 2
    r = controller.post("/api/schedules", json={
        "announcement_id": a["id"], "targets": {"nodes": ["node-3"]}, "timing": {
            "kind": "once", "start_at": "2020-01-01T00:00:00+07:00",
            "times": ["06:00", "17:00"]}})
    assert r.status_code == 422 and r.json()["message"].startswith("Giờ phát 06:00")


def test_the_reading_and_text_without_words(controller):
    r = controller.post("/api/reading", json={"text": "UBND xã họp lúc 7h30."})
    assert r.status_code == 200
    assert r.json() == {"reading": "ủy ban nhân dân xã họp lúc bảy giờ ba mươi phút.",
                        "has_words": True}
    assert controller.post("/api/reading", json={"text": "... !!!"}).json()["has_words"] is False
    for path in ("/api/preview", "/api/announcements"):
        r = controller.post(path, json={"text": "... !!! ---", "engine": "espeak-ng"})
        assert r.status_code == 422, r.text
        assert r.json()["message"].startswith("Nội dung không có chữ nào để đọc")
    r = controller.post("/api/preview", json={"text": "a" * 5001, "engine": "espeak-ng"})
    assert r.status_code == 422
