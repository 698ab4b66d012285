"""The admin's pages in chromium: accounts (edit, lock, reset a password, no default role)
and the audit log (filters, names, pages), at desktop and phone sizes."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tests.web.conftest import DESKTOP, PHONE, login, screenshot


def fits(page, size) -> None:  # type: ignore[no-untyped-def]
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= size["width"], f"the page is {width} px wide on a {size['width']} px screen"


def row(page, username):  # type: ignore[no-untyped-def]
    return page.locator(f"form.user-row[data-username='{username}']")


def staff_token(server) -> str:  # type: ignore[no-untyped-def]
    from controller.services import users

    with server.runtime.db.session() as s:
        _, token = users.create_api_token(s, users.get_user(s, "staff"), "may-in", "admin",
                                          None)
    return token


def api_status(server, token: str) -> int:  # type: ignore[no-untyped-def]
    return httpx.get(server.url("/api/auth/me"), headers={"Authorization": f"Bearer {token}"},
                     verify=False).status_code


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_admin_edits_locks_unlocks_and_resets_an_account(live_server, new_page, size):
    admin = new_page(size)
    login(admin, live_server, "admin", "/admin/users")
    # a new account needs an explicit role: the picker starts empty and the form refuses
    assert admin.eval_on_selector("#nu-role", "e => e.value") == ""
    admin.fill("#nu-username", "bientap2")
    admin.fill("#nu-password", "mat-khau-dai-12")
    admin.click("#new-user button[type=submit]")
    assert admin.eval_on_selector("#nu-role", "e => e.validity.valueMissing")
    admin.select_option("#nu-role", "staff")
    admin.click("#new-user button[type=submit]")
    admin.wait_for_selector("text=Đã tạo tài khoản bientap2.")
    assert admin.url.endswith("/admin/users?created=bientap2"), "Post/Redirect/Get"
    admin.reload()
    assert "đã có" not in admin.inner_text("main"), "a reload does not send the form again"
    fits(admin, size)

    # edit a name and a role
    staff = row(admin, "staff")
    staff.locator("input[name=full_name]").fill("Nguyễn Thị Biên Tập Viên")
    staff.locator("select[name=role]").select_option("leader")
    staff.locator("button[type=submit]").click()
    admin.wait_for_selector("#toast:has-text('Đã lưu tài khoản')")
    from controller.services import users

    with live_server.runtime.db.session() as s:
        account = users.get_user(s, "staff")
        assert (account.full_name, account.role.value) == ("Nguyễn Thị Biên Tập Viên", "leader")
        users.update_user(s, "staff", "admin", role=users.Role.staff)

    # lock: the person's open session and API token stop at once
    victim = new_page(size)
    login(victim, live_server, "staff", "/dashboard")
    assert victim.url.endswith("/dashboard")
    token = staff_token(live_server)
    assert api_status(live_server, token) == 200
    admin.on("dialog", lambda d: d.accept())
    row(admin, "staff").locator("button[data-user-action=lock]").click()
    admin.wait_for_selector("form.user-row[data-username='staff'][data-active='no']")
    assert "Đã khoá" in row(admin, "staff").inner_text()
    victim.goto(live_server.url("/dashboard"))
    assert "/login" in victim.url
    assert api_status(live_server, token) == 401
    login(victim, live_server, "staff")
    assert "Sai tên đăng nhập hoặc mật khẩu" in victim.inner_text("main")
    screenshot(admin, f"users-{'phone' if size is PHONE else 'desktop'}")

    # unlock, then reset: a generated password shown once, and it works
    row(admin, "staff").locator("button[data-user-action=unlock]").click()
    admin.wait_for_selector("form.user-row[data-username='staff'][data-active='yes']")
    login(victim, live_server, "staff", "/dashboard")
    assert victim.url.endswith("/dashboard")
    row(admin, "staff").locator("button[data-user-action=reset]").click()
    row(admin, "staff").locator("button[data-user-action=reset-confirm]").click()
    shown = row(admin, "staff").locator("[data-f=password]")
    shown.wait_for()
    password = shown.inner_text().strip()
    assert len(password) >= 10
    victim.goto(live_server.url("/dashboard"))
    assert "/login" in victim.url, "a reset ends the account's sessions"
    live_server.passwords["staff"] = password
    login(victim, live_server, "staff", "/dashboard")
    assert victim.url.endswith("/dashboard")
    admin.reload()
    assert password not in admin.content(), "the password is shown once, never again"

    # an admin's own row cannot lock itself, and the API says so in Vietnamese
    assert row(admin, "admin").locator("button[data-user-action=lock]").count() == 0
    refused = admin.evaluate("""async () => {
        const r = await fetch('/api/users/admin/lock', {method: 'POST', headers: {
          'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content}});
        return [r.status, (await r.json()).message]; }""")
    assert refused == [409, "Không thể tự khoá tài khoản của mình."]


def test_the_new_account_form_refuses_in_vietnamese(live_server, new_page):
    """A form posted without a role (an old browser ignores ``required``) is refused in
    words, not with pydantic's English."""
    page = new_page()
    login(page, live_server, "admin", "/admin/users")
    page.eval_on_selector("#nu-role", "e => { e.required = false; }")
    page.fill("#nu-username", "canbo3")
    page.fill("#nu-password", "mat-khau-dai-12")
    page.click("#new-user button[type=submit]")
    assert page.inner_text("main p.error[role=alert]") == "Hãy chọn vai trò cho tài khoản."


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_audit_log_filters_by_person_action_and_days_with_names(live_server, new_page,
                                                                    size):
    from controller import localtime
    from controller.services import audit, users

    with live_server.runtime.db.session() as s:
        users.set_locked(s, "officer", True, "admin")
    with live_server.runtime.db.session() as s:
        users.set_locked(s, "officer", False, "admin")
    for i in range(60):  # more than a page
        with live_server.runtime.db.session() as s:
            audit.record(s, "leader", "lexicon", "lexicon", f"tu{i}", reading="từ")
    page = new_page(size)
    login(page, live_server, "admin", "/admin/audit")
    assert "Nhật ký thao tác" in page.inner_text("h1")
    screenshot(page, f"audit-{'phone' if size is PHONE else 'desktop'}", full_page=False)
    first = page.inner_text("#audit tbody")
    assert "Trần Văn Lãnh Đạo" in first and "Sửa cách đọc từ" in first
    assert "trang 1/2" in page.inner_text("#audit-count")
    page.click("a[rel=next]")
    page.wait_for_selector("a[rel=prev]")
    assert "trang 2/2" in page.inner_text("#audit-count")

    # by action: the lock names the person, and the admin by name
    page.select_option("select[name=action]", label="Khoá tài khoản")
    page.select_option("select[name=who]", label="Quản trị viên")
    page.click("#audit-filters button[type=submit]")
    page.wait_for_selector("#audit-count:has-text('1 thao tác')")
    line = page.inner_text("#audit tbody tr")
    assert "Quản trị viên" in line and "Khoá tài khoản" in line and "Lê Văn An Ninh" in line
    fits(page, size)

    # a day range: today has them, yesterday nothing; an empty or broken day is no 422
    today = localtime.today()
    page.goto(live_server.url(f"/admin/audit?from={today - timedelta(days=3)}"
                              f"&to={today - timedelta(days=1)}"))
    assert "0 thao tác" in page.inner_text("#audit-count")
    page.goto(live_server.url("/admin/audit?who=&action=&from=&to=&page="))
    assert "trang 1/2" in page.inner_text("#audit-count")
    page.goto(live_server.url("/admin/audit?from=hom-qua&page=99"))
    assert "bộ lọc ngày được bỏ qua" in page.inner_text("main")
    assert "trang 2/2" in page.inner_text("#audit-count")


def test_every_action_the_services_record_has_a_vietnamese_label():
    """The audit page names every action (commands and operations by kind); read from the
    services' source so a new action without a label fails here."""
    import re
    from pathlib import Path

    from controller.web.audit_view import action_label
    from mqtt_contract import CommandKind

    source = "\n".join(p.read_text() for p in Path("controller").rglob("*.py"))
    actions = set(re.findall(r'audit\.record\(\s*\w+,\s*[\w.]+,\s*"(\w+)"', source))
    actions |= {f"command_{k.value}" for k in CommandKind}
    actions |= {f"operation_{k.value}" for k in CommandKind}
    actions |= {"submit", "approve", "reject", "alert_acknowledge", "alert_resolve",
                "alert_false_alarm"}
    assert len(actions) > 30
    unlabelled = sorted(a for a in actions if action_label(a) == "Thao tác khác")
    assert not unlabelled, unlabelled
    # a relay's "create" is no announcement
    assert action_label("create", "stream_source") == "Thêm đài tiếp sóng"
    assert action_label("create", "announcement") == "Tạo bản tin"


def test_the_controllers_own_steps_are_named_in_words_and_no_account_takes_their_names(
        live_server, new_page):
    """A live session that ended by itself is audited as the system, a slot's session as
    the relay runner: the audit page said 'system' and 'relay' (English) before."""
    from controller.services import audit, users
    from controller.services.live import SYSTEM_ACTOR

    with live_server.runtime.db.session() as s:
        audit.record(s, SYSTEM_ACTOR, "live_stop", "live", "a" * 32)
    with live_server.runtime.db.session() as s:
        audit.record(s, audit.Automatic.relay, "live_start", "live", "b" * 32)
    for name in audit.Automatic:
        with live_server.runtime.db.session() as s, pytest.raises(users.UserError):
            users.create_user(s, name, "mat-khau-dai-12", users.Role.staff, actor="admin")
    page = new_page()
    login(page, live_server, "admin", "/admin/audit")
    lines = page.inner_text("#audit tbody")
    assert "Hệ thống (tự động)" in lines and "Tiếp sóng theo lịch" in lines
    assert "system" not in lines and "relay" not in lines
