"""The live page in a real chromium: a fake microphone fed from a WAV speaks through the
controller (WebSocket → ffmpeg → Opus frames → broker) to three real nodes' file sinks,
and what they played correlates with the source (issue 11)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import expect

from tests.conftest import wait_for
from tests.live.signals import RATE, heard_live, locate, speechlike, write_wav
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP, login, screenshot

pytestmark = pytest.mark.slow
NODES = ("node-1", "node-2", "node-3")


def envelope(samples: np.ndarray, window: int = 160) -> np.ndarray:
    usable = len(samples) // window * window
    return np.sqrt(np.mean(samples[:usable].reshape(-1, window) ** 2, axis=1))


@pytest.fixture
def microphone(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """What the fake microphone hears (chromium loops the file): silence, then speech."""
    signal = speechlike(6.0, seed=11)
    quiet = np.zeros(3 * RATE, dtype=np.float32)
    return write_wav(tmp_path / "mic.wav", np.concatenate([quiet, signal, quiet])), signal


@pytest.fixture
def mic_page(playwright: Any, microphone: tuple[Path, np.ndarray]) -> Iterator[Any]:
    """A browser of its own (the fake microphone is a launch argument)."""
    args = [*CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone[0]}"]
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
    context = browser.new_context(viewport=DESKTOP, locale="vi-VN",
                                  timezone_id="Asia/Ho_Chi_Minh")
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    browser.close()
    assert not errors, f"JavaScript errors on the live page: {errors}"


def test_speaking_live_from_the_browser_reaches_three_nodes(
        live_server: Any, start_node: Any, mic_page: Any,
        microphone: tuple[Path, np.ndarray]) -> None:
    agents = {n: start_node(n) for n in NODES}
    page = mic_page
    login(page, live_server, "staff", "/live")
    assert page.locator("h1").inner_text() == "Phát trực tiếp"
    page.click("#live-toggle")
    expect(page.locator("#live-state")).to_contain_text("mời nói", timeout=20_000)
    expect(page.locator("#live-nodes")).to_have_text("3/3", timeout=15_000)
    assert page.locator("#live-toggle").inner_text() == "Dừng phát"
    screenshot(page, "live")
    levels = []
    for _ in range(24):  # 12 s: the fake microphone's file plays through once at least
        page.wait_for_timeout(500)
        levels.append(page.evaluate("() => document.getElementById('live-level').value"))
    assert max(levels) > 0.05, f"the level meter never moved: {levels}"
    assert page.locator("#live-elapsed").inner_text() >= "00:12"
    page.click("#live-toggle")
    expect(page.locator("#live-state")).to_have_text("Đã dừng phát.")

    runtime = live_server.runtime
    with runtime.db.session() as s:
        from sqlalchemy import select

        from controller.models import LiveBroadcast

        record = s.scalars(select(LiveBroadcast)).one()
        assert record.started_by == "staff" and record.ended_by == "staff"
    wait_for(lambda: all(a.live.stats is None for a in agents.values()), 10,
             what="every node to end the session")
    signal = microphone[1]
    for node, agent in agents.items():
        heard = heard_live(agent.config.audio.file_dir, record.id)
        assert len(heard) == 1, f"{node}: {len(heard)} streams"
        lag, score = locate(envelope(signal), envelope(heard[0].samples))
        assert score > 0.8, f"{node}: the speech is not in what it played ({score:.2f})"
        assert len(heard[0].samples) / RATE > 12, f"{node}: too short"
