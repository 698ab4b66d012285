"""The link to the provincial source information system, end to end: an upstream account
with an API token delivers bulletins (text, audio, emergency) and reads statistics; a real
node plays an emergency that went on the air at once; commune accounts see their commune
only."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from controller import localtime
from tests.conftest import make_user, wait_for
from tests.test_audit_once import tone_wav

pytestmark = pytest.mark.slow
TEXT = "Sở Y tế thông báo: từ ngày 5/3 tiêm phòng sởi cho trẻ em dưới 5 tuổi tại trạm y tế xã."


@pytest.fixture
def controller_settings(controller_settings, request):  # type: ignore[no-untyped-def]
    """The conftest settings, with ``upstream_emergency`` as the test asks (default
    ``draft``): ``@pytest.mark.parametrize("controller_settings", ["air"], indirect=True)``."""
    return controller_settings.model_copy(
        update={"upstream_emergency": getattr(request, "param", "draft")})


def upstream_token(client, username: str = "he-thong-tinh") -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The documented way (docs/api.md): an admin makes an account of role upstream and
    an API token acting as it."""
    r = client.post("/api/users", json={"username": username, "role": "upstream",
                                        "password": "mat-khau-he-thong-1",
                                        "full_name": "Hệ thống thông tin nguồn tỉnh"})
    assert r.status_code == 201, r.text
    r = client.post("/api/tokens", json={"name": "ttn-tinh", "username": username})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def bulletin(external_id: str, **fields: object) -> dict[str, object]:
    return {"external_id": external_id, "title": "Tiêm phòng sởi", "text": TEXT,
            "level": "priority", "communes": ["xa-demo"], **fields}


def test_a_text_bulletin_lands_as_a_draft_once_however_often_it_is_delivered(controller):
    auth = upstream_token(controller)
    r = controller.post("/api/upstream/bulletins", headers=auth, json=bulletin("cv-1273-1"))
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["status"] == "draft" and first["level"] == "priority"
    assert first["targets"] == {"all": True, "communes": ["xa-demo"]}
    assert not first["scheduled"] and not first["aired"] and first["nodes_played"] == 0
    a = controller.get(f"/api/announcements/{first['announcement_id']}").json()
    assert a["status"] == "draft" and a["title"] == "Tiêm phòng sởi" and a["text"] == TEXT
    assert a["created_by"] == "he-thong-tinh" and a["media_sha256"]  # rendered, offline too
    assert a["engine_used"] in ("espeak-ng", "gtts")

    again = controller.post("/api/upstream/bulletins", headers=auth,
                            json=bulletin("cv-1273-1", title="Khác"))
    assert again.status_code == 200, again.text
    assert again.json()["announcement_id"] == first["announcement_id"]
    titles = [x["title"] for x in controller.get("/api/announcements").json()]
    assert titles.count("Tiêm phòng sởi") == 1 and "Khác" not in titles
    state = controller.get("/api/upstream/bulletins/cv-1273-1", headers=auth)
    assert state.status_code == 200 and state.json() == first
    missing = controller.get("/api/upstream/bulletins/cv-khong-co", headers=auth)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"

    # a province leader schedules it on its targets, inside its validity
    r = controller.post("/api/upstream/bulletins", headers=auth, json=bulletin(
        "cv-1273-2", valid_until=(datetime.now(UTC) + timedelta(hours=1)).isoformat()))
    assert r.status_code == 201, r.text
    aid = r.json()["announcement_id"]
    late = controller.post("/api/schedules", json={
        "announcement_id": aid, "targets": r.json()["targets"],
        "timing": {"kind": "once",
                   "start_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat()}})
    assert late.status_code == 422 and late.json()["code"] == "outside_validity", late.text
    ok = controller.post("/api/schedules", json={
        "announcement_id": aid, "targets": r.json()["targets"],
        "timing": {"kind": "once",
                   "start_at": (datetime.now(UTC) + timedelta(minutes=30)).isoformat()}})
    assert ok.status_code == 201, ok.text
    assert controller.get("/api/upstream/bulletins/cv-1273-2",
                          headers=auth).json()["scheduled"] is True


def test_bad_deliveries_are_refused_with_a_code_and_a_vietnamese_message(controller,
                                                                         monkeypatch):
    auth = upstream_token(controller)
    post = lambda body: controller.post("/api/upstream/bulletins", headers=auth, json=body)  # noqa: E731
    r = post(bulletin("cv-2", communes=["xa-demo", "xa-khong-co"]))
    assert r.status_code == 422 and r.json()["code"] == "unknown_commune", r.text
    assert "xa-khong-co" in r.json()["message"] and r.json()["message"].startswith("Không có xã")
    r = post(bulletin("cv-3", valid_until=(datetime.now(UTC) - timedelta(minutes=1)).isoformat()))
    assert r.status_code == 422 and r.json()["code"] == "upstream_expired", r.text
    r = post(bulletin("cv-4", communes=[]))
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    r = post(bulletin("cv-5", audio=base64.b64encode(tone_wav()).decode()))  # both
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    r = post(bulletin("cv-6", level="khan"))
    assert r.status_code == 422

    audio = {"text": None}
    r = post(bulletin("cv-7", **audio, audio=base64.b64encode(b"not a recording " * 64).decode()))
    assert r.status_code == 415 and r.json()["code"] == "upload_not_audio", r.text
    r = post(bulletin("cv-8", **audio, audio="%%% not base64 %%%"))
    assert r.status_code == 422 and r.json()["code"] == "upload_malformed", r.text
    monkeypatch.setattr("controller.api.upstream.MAX_AUDIO_BYTES", 4096)
    r = post(bulletin("cv-9", **audio, audio=base64.b64encode(tone_wav(1.0)).decode()))
    assert r.status_code == 413 and r.json()["code"] == "upload_too_large", r.text
    monkeypatch.undo()
    for bad in ("cv-2", "cv-3", "cv-7", "cv-9"):  # nothing was kept of a refusal
        assert controller.get(f"/api/upstream/bulletins/{bad}", headers=auth).status_code == 404

    r = post(bulletin("cv-10", **audio, audio=base64.b64encode(tone_wav(1.0)).decode()))
    assert r.status_code == 201, r.text
    a = controller.get(f"/api/announcements/{r.json()['announcement_id']}").json()
    assert a["duration_s"] > 1.0 and a["media_sha256"]  # chime + the recording + outro


def test_the_upstream_account_reaches_only_its_own_routes(controller):
    auth = upstream_token(controller)
    for path in ("/api/nodes", "/api/announcements", "/api/auth/me", "/api/reports/daily"
                 "?day=2026-12-01"):
        r = controller.get(path, headers=auth)
        assert r.status_code == 403 and r.json()["code"] == "forbidden", (path, r.text)
    assert controller.post("/api/emergency", headers=auth,
                           json={"text": "Bão."}).status_code == 403
    r = controller.get("/dashboard", headers=auth)
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
    staff = make_user(controller, "bientap", "staff")
    assert controller.post("/api/upstream/bulletins", headers=staff,
                           json=bulletin("cv-x")).status_code == 403
    r = controller.post("/api/users", json={"username": "he-thong-xa", "role": "upstream",
                                            "password": "mat-khau-he-thong-1",
                                            "commune": "xa-demo"})
    assert r.status_code == 422 and "tỉnh" in r.json()["message"]  # a province account


@pytest.mark.parametrize("controller_settings", ["air"], indirect=True)
def test_an_emergency_goes_on_the_air_at_once_and_the_statistics_show_it(controller,
                                                                         start_node):
    start_node("node-1")
    wait_for(lambda: any(n["online"] for n in controller.get("/api/nodes").json()), 10,
             what="node-1 online")
    auth = upstream_token(controller)
    r = controller.post("/api/upstream/bulletins", headers=auth, json=bulletin(
        "kc-bao-1", title="Bão số 3", text="Bão số 3 đổ bộ: bà con không ra khơi.",
        level="emergency"))
    assert r.status_code == 201, r.text
    assert r.json()["emergency_sent"] and r.json()["status"] == "scheduled"
    state = wait_for(lambda: (s := controller.get("/api/upstream/bulletins/kc-bao-1",
                                                  headers=auth).json())["aired"] and s,
                     60, what="node-1 to play the emergency")
    assert state["nodes_played"] == 1
    history = controller.get(f"/api/announcements/{r.json()['announcement_id']}"
                             ).json()["history"]
    (record,) = [h for h in history if h["actor"] == "he-thong-tinh"]  # one change, one record
    steps = [record["action"], *(s["action"] for s in record["detail"].get("steps", []))]
    assert steps[:2] == ["create", "upstream_bulletin"] and "emergency" in steps

    day = localtime.today().isoformat()
    r = controller.get("/api/upstream/stats", headers=auth, params={"day": day})
    assert r.status_code == 200, r.text
    (demo,) = [c for c in r.json()["communes"] if c["commune"] == "xa-demo"]
    assert demo["clusters_total"] == 3 and demo["clusters_online"] == 1
    assert demo["clusters_reporting"] == 1 and demo["broadcasts_aired"] == 1
    assert demo["minutes"] > 0 and demo["live_minutes"] == 0
    (item,) = demo["per_item"]
    assert item["title"] == "Bão số 3" and item["plays"] == 1 and item["nodes"] == 1
    assert [n["node_id"] for n in demo["per_node"]] == ["node-1"]
    csv = controller.get("/api/upstream/stats", headers=auth,
                         params={"day": day, "commune": "xa-demo", "format": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    text = csv.content.decode("utf-8")
    assert text.startswith("\ufeffNgày,Mã xã")
    assert f"{day},xa-demo" in text and "Bão số 3" in text and ",node-1," in text
    assert ",broadcasts_aired,Lượt phát,1," in text
    yesterday = (localtime.today() - timedelta(days=1)).isoformat()
    r = controller.get("/api/upstream/stats", headers=auth,
                       params={"day": yesterday, "commune": "xa-demo"})
    assert r.json()["communes"][0]["broadcasts_aired"] == 0

    # a commune account of another commune: its own commune only
    assert controller.put("/api/communes", json={"code": "xa-khac", "name": "Xã Khác",
                                                 "timezone": "Asia/Ho_Chi_Minh"}
                          ).status_code == 200
    r = controller.post("/api/users", json={"username": "lanhdao-khac", "role": "leader",
                                            "password": "lanhdao-khac-password-123",
                                            "commune": "xa-khac"})
    assert r.status_code == 201, r.text
    from tests.conftest import login

    other = {"Authorization": "Bearer " + login(controller, "lanhdao-khac",
                                                "lanhdao-khac-password-123")}
    r = controller.get("/api/upstream/stats", headers=other, params={"day": day})
    assert r.status_code == 200 and [c["commune"] for c in r.json()["communes"]] == ["xa-khac"]
    assert r.json()["communes"][0]["broadcasts_aired"] == 0 and "node-1" not in r.text
    r = controller.get("/api/upstream/stats", headers=other,
                       params={"day": day, "commune": "xa-demo", "format": "csv"})
    assert r.status_code == 403 and r.json()["code"] == "other_commune"
    province = make_user(controller, "lanhdao-tinh", "leader")
    r = controller.get("/api/upstream/stats", headers=province, params={"day": day})
    assert {c["commune"] for c in r.json()["communes"]} == {"xa-demo", "xa-khac"}
