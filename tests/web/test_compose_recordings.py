"""Record and rebroadcast on the compose page, in a real chromium at a phone's width: a
finished live session's recording (made through the real live path) is listed in words,
"Dùng bản ghi này" makes it the announcement's recording, and the saved announcement
plays it (issue 11)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import expect

from tests.live.recordings import recorded_session
from tests.live.signals import RATE, locate
from tests.web.conftest import PHONE, login, screenshot
from tests.web.test_walker import VISIBLE_WORDS, problems_in

pytestmark = pytest.mark.slow


def decoded(path: Path) -> np.ndarray:
    """Any audio file as 16 kHz mono samples."""
    pcm = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i",
                          str(path), "-ac", "1", "-ar", str(RATE), "-f", "s16le", "pipe:1"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32767


def envelope(samples: np.ndarray, window: int = 160) -> np.ndarray:
    usable = len(samples) // window * window
    return np.sqrt(np.mean(samples[:usable].reshape(-1, window) ** 2, axis=1))


def test_a_live_sessions_recording_is_chosen_on_the_compose_page_and_saved(
        live_server: Any, new_page: Any, tmp_path: Path) -> None:
    from controller.models import Announcement, LiveBroadcast

    runtime = live_server.runtime
    page = new_page(PHONE)
    login(page, live_server, "staff", "/compose")
    expect(page.locator("#recordings-state")).to_contain_text("Chưa có bản ghi nào")
    assert not problems_in(page.evaluate(VISIBLE_WORDS))

    record = recorded_session(runtime, tmp_path, title="Họp dân thôn Đông", actor="staff",
                              seconds=6.0)
    page.reload()
    item = page.locator("#recordings-list li").filter(has_text="Họp dân thôn Đông")
    expect(item).to_have_count(1)
    text = item.inner_text()
    assert "Phát trực tiếp" in text and "Nguyễn Thị Biên Tập" in text, text
    assert "giây" in text and record.id not in text and record.recording_sha256 not in text
    with runtime.db.session() as s:
        started = s.get(LiveBroadcast, record.id).started_at
    from controller import localtime

    assert started.astimezone(localtime.zone()).strftime("%H:%M") in text, text
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    assert not problems_in(page.evaluate(VISIBLE_WORDS))

    item.get_by_role("button", name="Dùng bản ghi này").click()
    expect(page.locator("#upload-info")).to_contain_text("Đã chọn bản ghi «Họp dân thôn Đông»")
    expect(item.get_by_role("button")).to_have_attribute("aria-pressed", "true")
    screenshot(page, "compose-recordings")
    page.fill("#title", "Phát lại họp dân")
    page.click("#save")
    expect(page.locator("#saved")).to_be_visible(timeout=60_000)

    with runtime.db.session() as s:
        from sqlalchemy import select

        saved = s.scalars(select(Announcement).where(
            Announcement.title == "Phát lại họp dân")).one()
        items, media = saved.items, (saved.media_sha256, saved.media_codec)
    assert {"kind": "recording", "upload": record.recording_sha256} in [
        {k: i.get(k) for k in ("kind", "upload")} for i in items], items
    assert media[0], "the announcement was not rendered"
    recording = decoded(next(runtime.media.root.glob(f"{record.recording_sha256}.*")))
    audio = decoded(runtime.media.path(*media))
    lag, score = locate(envelope(recording), envelope(audio))
    print(f"\nrecording {len(recording) / RATE:.1f} s found in the announcement's "
          f"{len(audio) / RATE:.1f} s at {lag * 160 / RATE:.2f} s, envelope correlation "
          f"{score:.3f}")
    assert score > 0.9, f"the announcement does not play the recording ({score:.2f})"
