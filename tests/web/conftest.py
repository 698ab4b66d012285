"""Browser tests: the real app served by uvicorn on a free port (in a thread), the real
broker and edge agents from tests/conftest.py, and Debian's chromium driven by Playwright.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from firmware_config.broker import free_port

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("LOAXA_SCREENSHOTS_DIR", REPO / ".run" / "screenshots"))
"""Untracked by default (tests never modify tracked files); `make screenshots` points it
at docs/screenshots/ to refresh the pictures the README shows."""
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
ROLES = ("staff", "leader", "officer")


@dataclass
class LiveServer:
    base_url: str
    app: Any
    runtime: Any
    passwords: dict[str, str]

    def url(self, path: str) -> str:
        return self.base_url + path


@contextmanager
def serve(settings: Any) -> Iterator[str]:
    """The app in uvicorn on a free port, in a thread, with the real lifespan (runtime,
    MQTT link, migrations) and the same server options as `loaxa controller serve`."""
    import uvicorn

    from controller.app import create_app, server_options

    app = create_app(settings)
    port = free_port()
    options = server_options(settings) | {"host": "127.0.0.1", "port": port}
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2,
                                           lifespan="on", **options))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        assert app.state.runtime.link.wait_connected(10), "controller did not reach the broker"
        serve.app = app  # type: ignore[attr-defined]
        yield f"{'https' if settings.serves_https else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def live_server(controller_settings) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    """The app served by uvicorn, with a staff, a leader and an officer account."""
    from controller.security import Role
    from controller.services import users
    from tests.conftest import ADMIN_PASSWORD

    with serve(controller_settings) as base_url:
        app = serve.app  # type: ignore[attr-defined]
        runtime = app.state.runtime
        passwords = {"admin": ADMIN_PASSWORD}
        with runtime.db.session() as s:
            for role in ROLES:
                passwords[role] = f"{role}-password-123"
                users.create_user(s, role, passwords[role], Role(role),
                                  {"staff": "Nguyễn Thị Biên Tập", "leader": "Trần Văn Lãnh Đạo",
                                   "officer": "Lê Văn An Ninh"}[role])
        yield LiveServer(base_url, app, runtime, passwords)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    """One Playwright for the whole run: its sync API cannot start a second time while
    the first is running (a test that needs its own browser launches it from here)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    b = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                   args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def new_page(browser, live_server) -> Iterator[Callable[..., Any]]:  # type: ignore[no-untyped-def]
    """A fresh browser context (own cookies) per call; closed after the test."""
    contexts: list[Any] = []

    def make(viewport: dict[str, int] | None = None, **kwargs: Any) -> Any:
        context = browser.new_context(viewport=viewport or DESKTOP, locale="vi-VN",
                                      timezone_id="Asia/Ho_Chi_Minh", **kwargs)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    errors: list[str] = []
    yield make
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors on the pages: {errors}"


def login(page: Any, server: LiveServer, role: str, next_path: str = "") -> None:
    """Sign in through the login form, as a person would."""
    page.goto(server.url("/login" + (f"?next={next_path}" if next_path else "")))
    page.fill("#username", role)
    page.fill("#password", server.passwords[role])
    page.click("button[type=submit]")
    page.wait_for_load_state("domcontentloaded")


def screenshot(page: Any, name: str, full_page: bool = True) -> Path:
    """Into :data:`SCREENSHOTS` (``.run/screenshots/``, or docs/ with `make screenshots`)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.evaluate("() => { const t = document.getElementById('toast'); if (t) t.hidden = true; "
                  "window.scrollTo(0, 0); }")  # the sticky header at the top
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 10_000, f"{name}: an empty screenshot?"
    return path
