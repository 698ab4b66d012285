"""Uploaded recordings: probed with ffprobe, limits enforced, stored by content hash."""

from __future__ import annotations

from pathlib import Path

import pytest
from content_helpers import ffmpeg

from broadcasts.uploads import UploadRejected, probe_upload, store_upload


def _tone(path: Path, seconds: float, *extra: str) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", *extra, str(path))
    return path


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.wav", "wav"), ("a.mp3", "mp3"), ("a.m4a", "m4a"), ("a.ogg", "ogg")],
)
def test_accepted_formats_are_stored_content_addressed(tmp_path, name, fmt) -> None:
    source = _tone(tmp_path / name, 2.0)
    stored = store_upload(source, tmp_path / "store")
    assert stored.format == fmt
    assert stored.path == tmp_path / "store" / f"{stored.sha256}.{fmt}"
    assert stored.path.read_bytes() == source.read_bytes()
    assert stored.duration_s == pytest.approx(2.0, abs=0.1)


def test_user_supplied_name_is_never_used(tmp_path) -> None:
    source = _tone(tmp_path / "..; rm -rf thong bao.mp3", 1.0)
    stored = store_upload(source, tmp_path / "store")
    assert "rm" not in stored.path.name and stored.path.parent == tmp_path / "store"
    again = store_upload(source, tmp_path / "store")
    assert again == stored
    assert len(list((tmp_path / "store").iterdir())) == 1


def test_text_file_renamed_mp3_is_rejected(tmp_path) -> None:
    fake = tmp_path / "thong-bao.mp3"
    fake.write_text("Đây không phải là âm thanh.\n" * 200, encoding="utf-8")
    with pytest.raises(UploadRejected, match="not an audio file|unsupported format") as caught:
        store_upload(fake, tmp_path / "store")
    assert caught.value.reason
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").iterdir())


def test_image_is_rejected(tmp_path) -> None:
    image = tmp_path / "photo.mp3"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=32x32:d=1", "-frames:v", "1", "-f", "image2",
           str(image))  # fmt: skip
    with pytest.raises(UploadRejected):
        probe_upload(image)


def test_video_with_sound_is_rejected(tmp_path) -> None:
    video = tmp_path / "clip.m4a"
    ffmpeg("-f", "lavfi", "-i", "testsrc=d=1:s=64x64", "-f", "lavfi", "-i", "sine=d=1",
           "-c:v", "mpeg4", "-c:a", "aac", "-f", "mp4", str(video))  # fmt: skip
    with pytest.raises(UploadRejected, match="video"):
        probe_upload(video)


def test_too_long_is_rejected(tmp_path) -> None:
    source = _tone(tmp_path / "long.mp3", 6.0)
    with pytest.raises(UploadRejected, match="too long: 0.1 min"):
        store_upload(source, tmp_path / "store", max_seconds=5)
    assert store_upload(source, tmp_path / "store", max_seconds=7).duration_s > 5


def test_too_big_is_rejected_before_probing(tmp_path) -> None:
    source = _tone(tmp_path / "big.wav", 3.0)
    with pytest.raises(UploadRejected, match="too big"):
        store_upload(source, tmp_path / "store", max_bytes=10_000)


def test_empty_file_is_rejected(tmp_path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(UploadRejected, match="empty"):
        probe_upload(empty)
