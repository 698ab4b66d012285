"""Signing in and out through the pages, the session cookie's flags, CSRF on the forms,
and who may see which page (a staff account never sees the admin pages)."""

from __future__ import annotations

import httpx

from tests.web.conftest import login


def test_login_sets_an_httponly_samesite_cookie_and_lands_on_the_role_home(live_server, new_page):
    page = new_page()
    page.goto(live_server.url("/dashboard"))
    assert "/login" in page.url, "a visitor without a session is sent to the login form"
    login(page, live_server, "staff", next_path="/dashboard")
    assert page.url.endswith("/dashboard")
    assert page.inner_text("h1") == "Tổng quan"
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["loaxa_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert not session["secure"], "plain http in the test: Secure only over https"
    assert cookies["loaxa_csrf"]["httpOnly"]
    # scripts cannot read the session cookie
    assert "loaxa_session" not in page.evaluate("document.cookie")

    officer = new_page()
    login(officer, live_server, "officer")
    assert officer.url.endswith("/alerts"), "officers land on the alert desk"

    page.click("text=Đăng xuất")
    page.wait_for_url("**/login")
    assert "loaxa_session" not in {c["name"] for c in page.context.cookies()}
    page.goto(live_server.url("/nodes"))
    assert "/login" in page.url


def test_wrong_password_is_refused_and_rate_limited(live_server, new_page):
    page = new_page()
    for _ in range(live_server.runtime.settings.login_attempts):
        page.goto(live_server.url("/login"))
        page.fill("#username", "staff")
        page.fill("#password", "not-the-password")
        page.click("button[type=submit]")
        assert "Sai tên đăng nhập" in page.inner_text("[role=alert]")
    login(page, live_server, "staff")  # the right password, but too many failures first
    assert "quá nhiều lần" in page.inner_text("[role=alert]")
    assert "/login" in page.url


def test_staff_cannot_see_the_admin_pages(live_server, new_page):
    page = new_page()
    login(page, live_server, "staff")
    nav = page.inner_text("header nav")
    assert "Tài khoản" not in nav and "Cảnh báo" not in nav
    response = page.goto(live_server.url("/admin/users"))
    assert response is not None and response.status == 403
    assert page.inner_text("h1") == "Không có quyền truy cập"
    assert page.locator("#users").count() == 0, "no account list on the refusal page"
    assert page.goto(live_server.url("/alerts")).status == 403  # type: ignore[union-attr]

    admin = new_page()
    login(admin, live_server, "admin")
    assert admin.goto(live_server.url("/admin/users")).status == 200  # type: ignore[union-attr]
    assert admin.locator("#users form[data-username=staff]").count() == 1
    admin.fill("#nu-username", "thu-ky")
    admin.fill("#nu-name", "Thư ký <b>xã</b>")
    admin.select_option("#nu-role", "staff")
    admin.fill("#nu-password", "thu-ky-password-1")
    admin.click("text=Tạo tài khoản")
    assert "Đã tạo tài khoản thu-ky" in admin.inner_text("[role=status]")
    # user content is escaped, never markup
    cell = admin.locator("#users form[data-username=thu-ky] [data-f=name]")
    assert cell.inner_text() == "Thư ký <b>xã</b>"
    assert cell.locator("b").count() == 0


def test_forms_and_cookie_authenticated_api_calls_need_the_csrf_token(live_server):
    with httpx.Client(base_url=live_server.base_url) as client:
        page = client.get("/login")
        token = page.text.split('name="csrf-token" content="')[1].split('"')[0]
        form = {"username": "staff", "password": live_server.passwords["staff"]}
        assert client.post("/login", data=form).status_code == 403  # no token
        assert client.post("/login", data={**form, "csrf_token": "forged.token"}
                           ).status_code == 403
        r = client.post("/login", data={**form, "csrf_token": token})
        assert r.status_code == 303 and "loaxa_session" in client.cookies
        token = client.cookies["loaxa_csrf"]  # rotated at login
        # the API with the session cookie: reading is fine, changing needs the header
        assert client.get("/api/nodes").status_code == 200
        body = {"kind": "test_tone"}
        assert client.post("/api/nodes/node-1/commands", json=body).status_code == 403
        assert client.post("/api/nodes/node-1/commands", json=body,
                           headers={"X-CSRF-Token": "x" + token[1:]}).status_code == 403
        assert client.post("/api/nodes/node-1/commands", json=body,
                           headers={"X-CSRF-Token": token}).status_code == 202
        # a bearer client has no ambient credential: no CSRF token needed
        with httpx.Client(base_url=live_server.base_url) as api:
            bearer = api.post("/api/auth/token", data=form).json()["access_token"]
            r = api.post("/api/nodes/node-1/commands", json=body,
                         headers={"Authorization": f"Bearer {bearer}"})
            assert r.status_code == 202
        # logging out is a CSRF-checked form too
        assert client.post("/logout").status_code == 403
        assert client.post("/logout", data={"csrf_token": token}).status_code == 303
