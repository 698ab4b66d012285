"""Content through the API: uploads, templates, preview, the commune's own words."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from broadcasts import measure_lufs
from tests.conftest import make_user


def make_mp3(path: Path, seconds: float = 2.0) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"sine=frequency=440:duration={seconds}", "-ac", "1", "-b:a", "64k",
                    str(path)], check=True)
    return path


def upload(client, path: Path, name: str | None = None):  # type: ignore[no-untyped-def]
    with open(path, "rb") as f:
        return client.post("/api/uploads", files={"file": (name or path.name, f)})


def test_mixed_announcement_is_one_normalised_file(controller, tmp_path: Path) -> None:
    r = upload(controller, make_mp3(tmp_path / "speech.mp3"), "../../etc/passwd.mp3")
    assert r.status_code == 201, r.text
    sha = r.json()["sha256"]
    assert r.json()["original_name"] == "passwd.mp3"  # shown only, never a path
    body = {"title": "Hỗn hợp", "items": [
        {"kind": "chime"},
        {"kind": "speech", "text": "UBND xã thông báo: ngày 20/01/2026, lúc 7h30, tiêm BHYT."},
        {"kind": "recording", "upload": sha}, {"kind": "silence", "seconds": 0.5},
        {"kind": "outro"}]}
    r = controller.post("/api/announcements", json=body)
    assert r.status_code == 201, r.text
    a = r.json()
    stored = controller.runtime.media.path(a["media_sha256"], a["media_codec"])
    assert measure_lufs(stored) == pytest.approx(-16.0, abs=1.0)
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                            "stream=channels,sample_rate,bit_rate", "-of", "json", str(stored)],
                           capture_output=True, text=True, check=True)
    stream = json.loads(probe.stdout)["streams"][0]
    assert stream["channels"] == 1 and int(stream["sample_rate"]) <= 24000
    assert 20_000 <= int(stream["bit_rate"]) <= 33_000
    assert a["duration_s"] > 5  # chime + speech + 2 s recording + silence + outro


def test_preview_returns_audio_to_listen_to(controller) -> None:
    r = controller.post("/api/preview", json={"text": "Xin chào bà con thôn Keng Đu."})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/mpeg" and len(r.content) > 1000
    assert r.headers["x-loaxa-engine"] in ("espeak-ng", "gtts")


def test_bad_uploads_get_clear_errors(controller, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp3"
    text.write_text("đây không phải âm thanh" * 100)
    r = upload(controller, text)
    assert r.status_code == 415 and r.json()["detail"]["code"] == "upload_not_audio"
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    r = upload(controller, empty)
    assert r.status_code == 422 and r.json()["detail"]["code"] == "upload_empty"
    r = controller.post("/api/announcements", json={"items": [
        {"kind": "recording", "upload": "0" * 64}]})
    assert r.status_code == 422 and "unknown upload" in r.json()["detail"]["reason"]
    assert r.json()["code"] == "content_invalid"
    r = controller.post("/api/announcements", json={"text": "a", "items": [{"kind": "chime"}]})
    assert r.status_code == 422 and "either text or items" in r.json()["detail"]


def test_templates_render_and_name_missing_fields(controller) -> None:
    templates = controller.get("/api/templates").json()
    assert {"vaccination_day", "power_cut", "meeting", "vneid_support", "storm_warning"} <= {
        t["id"] for t in templates}
    power = next(t for t in templates if t["id"] == "power_cut")
    values = {f["name"]: f["example"] for f in power["fields"]}
    r = controller.post("/api/templates/power_cut/render", json={"values": values})
    assert r.status_code == 200 and len(r.json()["text"]) > 20
    missing = dict(list(values.items())[1:])
    r = controller.post("/api/templates/power_cut/render", json={"values": missing})
    assert r.status_code == 422 and power["fields"][0]["name"] in r.json()["detail"]
    assert controller.post("/api/templates/nope/render", json={}).status_code == 404


def test_commune_words_change_the_speech_without_code(controller) -> None:
    r = controller.put("/api/lexicon", json={"term": "KĐ", "reading": "Keng Đu"})
    assert r.status_code == 200
    assert {"term": "KĐ", "reading": "Keng Đu"} in controller.get("/api/lexicon").json()
    officer = make_user(controller, "officer1", "officer")
    assert controller.put("/api/lexicon", json={"term": "x", "reading": "y"},
                          headers=officer).status_code == 403
