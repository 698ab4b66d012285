"""The API documentation works on a closed network: /docs loads Swagger UI from the
controller itself (the swagger-ui-bundle package), not from a CDN."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.web.conftest import DESKTOP, PHONE


def only_the_app(page, base_url: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Every request to anywhere but the controller fails, as on a closed network; the
    list fills with what the page tried to reach."""
    app_host = urlsplit(base_url).netloc
    elsewhere: list[str] = []

    def route(r) -> None:  # type: ignore[no-untyped-def]
        if urlsplit(r.request.url).netloc == app_host:
            r.continue_()
        else:
            elsewhere.append(r.request.url)
            r.abort("internetdisconnected")

    page.context.route("**/*", route)
    return elsewhere


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_swagger_ui_loads_with_only_the_controller_reachable(live_server, new_page, size):
    page = new_page(size)
    elsewhere = only_the_app(page, live_server.base_url)
    page.goto(live_server.url("/docs"))
    page.wait_for_selector(".swagger-ui .opblock-tag", timeout=20_000)
    assert page.locator(".swagger-ui .opblock").count() > 20
    assert "loaxa controller" in page.inner_text(".swagger-ui .info")
    page.locator(".opblock-summary").first.click()  # an operation opens: the script runs
    page.wait_for_selector(".opblock.is-open .opblock-section")
    assert elsewhere == [], f"the docs page reached out of the station: {elsewhere}"


def test_redoc_loads_with_only_the_controller_reachable(live_server, new_page):
    page = new_page()
    elsewhere = only_the_app(page, live_server.base_url)
    page.goto(live_server.url("/redoc"))
    page.wait_for_selector("h1:has-text('loaxa controller')", timeout=30_000)
    assert page.locator("li[data-item-id]").count() > 20  # the menu of operations
    assert elsewhere == [], f"the docs page reached out of the station: {elsewhere}"
