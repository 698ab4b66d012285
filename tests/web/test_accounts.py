"""Accounts: logout and a password change end sessions on the server (a copied token is
refused at once), API tokens for integrations (created, listed, revoked by an admin), and
HTTPS with Secure cookies when the controller is given a certificate."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import httpx

from tests.conftest import ADMIN_PASSWORD, login, make_user


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_api_logout_ends_the_session_on_the_server(controller):
    token = login(controller, "admin", ADMIN_PASSWORD)
    assert controller.get("/api/auth/me", headers=bearer(token)).status_code == 200
    assert controller.post("/api/auth/logout", headers=bearer(token)).status_code == 204
    r = controller.get("/api/auth/me", headers=bearer(token))
    assert r.status_code == 401 and r.json()["detail"]["code"] == "session_ended"
    # the other sessions of the same account go on
    assert controller.get("/api/auth/me").status_code == 200


def test_page_logout_ends_the_session_a_copied_cookie_is_refused(live_server):
    with httpx.Client(base_url=live_server.base_url) as browser:
        page = browser.get("/login")
        csrf = page.text.split('name="csrf-token" content="')[1].split('"')[0]
        r = browser.post("/login", data={"username": "staff", "csrf_token": csrf,
                                         "password": live_server.passwords["staff"]})
        assert r.status_code == 303
        stolen = browser.cookies["loaxa_session"]
        csrf = browser.cookies["loaxa_csrf"]
        assert browser.post("/logout", data={"csrf_token": csrf}).status_code == 303
    with httpx.Client(base_url=live_server.base_url) as thief:
        assert thief.get("/api/nodes", headers=bearer(stolen)).status_code == 401
        thief.cookies.set("loaxa_session", stolen)
        r = thief.get("/dashboard", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_a_password_change_ends_every_session_of_the_account(controller):
    make_user(controller, "bien-tap", "staff")
    old_password = "bien-tap-password-123"
    laptop = login(controller, "bien-tap", old_password)
    phone = login(controller, "bien-tap", old_password)
    r = controller.post("/api/auth/password", headers=bearer(laptop), json={
        "current_password": "not-it-at-all", "new_password": "a-new-password-456"})
    assert r.status_code == 403 and r.json()["detail"]["code"] == "wrong_password"
    r = controller.post("/api/auth/password", headers=bearer(laptop), json={
        "current_password": old_password, "new_password": "a-new-password-456"})
    assert r.status_code == 200, r.text
    fresh = r.json()["access_token"]
    for old in (laptop, phone):
        assert controller.get("/api/auth/me", headers=bearer(old)).status_code == 401
    assert controller.get("/api/auth/me", headers=bearer(fresh)).json()["username"] == "bien-tap"
    assert controller.post("/api/auth/token", headers={"Authorization": ""}, data={
        "username": "bien-tap", "password": old_password}).status_code == 401
    assert login(controller, "bien-tap", "a-new-password-456")


def test_a_forged_or_sessionless_token_is_refused(controller):
    """A token signed with the right key but naming no session (as every token did
    before sessions) is refused: only a sign-in makes a session."""
    from datetime import timedelta

    from controller.security import create_token

    runtime = controller.runtime
    token = create_token(runtime.secret_key, "admin", "admin", timedelta(hours=1))
    assert controller.get("/api/auth/me", headers=bearer(token)).status_code == 401


def test_api_tokens_are_created_listed_and_revoked_by_an_admin(controller):
    staff = make_user(controller, "he-thong", "staff")
    r = controller.post("/api/tokens", json={"name": "bản tin thời tiết",
                                             "username": "he-thong", "expires_in_days": 30})
    assert r.status_code == 201, r.text
    created = r.json()
    token = created["token"]
    assert token.startswith("loaxa_") and created["username"] == "he-thong"
    # it works as the account (its role: staff), and is refused where staff is
    assert controller.get("/api/lexicon", headers=bearer(token)).status_code == 200
    assert controller.get("/api/users", headers=bearer(token)).status_code == 403
    # only its hash is stored, and the list never shows it
    listed = controller.get("/api/tokens").json()
    assert [t["id"] for t in listed] == [created["id"]]
    assert "token" not in listed[0] and listed[0]["last_used_at"] is not None
    from sqlalchemy import select

    from controller.models import ApiToken

    with controller.runtime.db.session() as s:
        stored = s.scalar(select(ApiToken.secret_sha256))
    assert stored and stored not in token
    # staff may not manage tokens
    assert controller.get("/api/tokens", headers=staff).status_code == 403
    assert controller.post("/api/tokens", headers=staff, json={
        "name": "x", "username": "he-thong"}).status_code == 403
    # a wrong secret with a real id is refused
    assert controller.get("/api/lexicon", headers=bearer(token[:-2] + "xx")).status_code == 401
    # revoked: refused on the very next request
    assert controller.delete(f"/api/tokens/{created['id']}").status_code == 204
    r = controller.get("/api/lexicon", headers=bearer(token))
    assert r.status_code == 401 and r.json()["detail"]["code"] == "session_ended"
    assert controller.get("/api/tokens").json()[0]["revoked_at"] is not None
    assert controller.delete("/api/tokens/999").status_code == 404
    assert controller.post("/api/auth/logout", headers=bearer(token)).status_code == 401


def test_disabling_the_account_ends_its_api_tokens(controller):
    make_user(controller, "tich-hop", "staff")
    token = controller.post("/api/tokens", json={"name": "x", "username": "tich-hop"}
                            ).json()["token"]
    assert controller.get("/api/lexicon", headers=bearer(token)).status_code == 200
    from controller.services import users

    with controller.runtime.db.session() as s:
        users.get_user(s, "tich-hop").active = False
    assert controller.get("/api/lexicon", headers=bearer(token)).status_code == 401


# --------------------------------------------------------------------------- HTTPS

def self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loaxa-controller")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "controller.crt", tmp / "controller.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def test_the_controller_serves_https_with_secure_cookies(controller_settings, tmp_path):
    import ssl

    from controller.app import server_options
    from tests.web.conftest import serve

    cert, key = self_signed(tmp_path)
    settings = controller_settings.model_copy(update={"tls_certfile": cert,
                                                      "tls_keyfile": key})
    assert server_options(settings)["ssl_certfile"] == str(cert)
    context = ssl.create_default_context(cafile=str(cert))
    with serve(settings) as base:
        assert base.startswith("https://")
        with httpx.Client(base_url=base, verify=context) as c:
            assert c.get("/healthz").status_code == 200
            page = c.get("/login")
            assert "secure" in page.headers["set-cookie"].lower()
            csrf = c.cookies["loaxa_csrf"]
            r = c.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD,
                                       "csrf_token": csrf})
            assert r.status_code == 303
            session = [h for h in r.headers.get_list("set-cookie")
                       if h.startswith("loaxa_session=")]
            assert session and "secure" in session[0].lower() and "httponly" in session[
                0].lower()
        # plain http to the TLS port gets nowhere
        plain = base.replace("https://", "http://")
        with httpx.Client(base_url=plain) as c:
            try:
                status = c.get("/healthz").status_code
            except httpx.HTTPError:
                status = None
            assert status != 200


def test_the_account_page_changes_the_password_and_ends_other_sessions(live_server):
    other = httpx.Client(base_url=live_server.base_url)
    other_token = other.post("/api/auth/token", data={
        "username": "leader", "password": live_server.passwords["leader"]}).json()["access_token"]
    with httpx.Client(base_url=live_server.base_url) as browser:
        csrf = browser.get("/login").text.split('name="csrf-token" content="')[1].split('"')[0]
        assert browser.post("/login", data={"username": "leader", "csrf_token": csrf,
                                            "password": live_server.passwords["leader"]}
                            ).status_code == 303
        page = browser.get("/account")
        assert page.status_code == 200 and "Đổi mật khẩu" in page.text
        csrf = browser.cookies["loaxa_csrf"]
        assert browser.post("/account", data={"current_password": "wrong-one-entirely",
                                              "new_password": "leader-new-pass-1",
                                              "csrf_token": csrf}).status_code == 403
        r = browser.post("/account", data={"current_password": live_server.passwords["leader"],
                                           "new_password": "leader-new-pass-1",
                                           "csrf_token": csrf})
        assert r.status_code == 200 and "Đã đổi mật khẩu" in r.text
        # this browser goes on with its new session; the other one is over
        assert browser.get("/dashboard", follow_redirects=False).status_code == 200
    assert other.get("/api/auth/me", headers=bearer(other_token)).status_code == 401
    other.close()


def test_the_signing_key_file_is_private(tmp_path):
    """Created 0600 (even under a careless umask); an existing readable one is tightened."""
    import os

    from controller.security import load_or_create_secret

    old = os.umask(0o000)  # a careless umask: files would be world-readable
    try:
        key = load_or_create_secret(tmp_path / "secret_key")
    finally:
        os.umask(old)
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert load_or_create_secret(tmp_path / "secret_key") == key
    loose = tmp_path / "loose"
    loose.write_text("k")
    loose.chmod(0o644)
    assert load_or_create_secret(loose) == "k" and loose.stat().st_mode & 0o777 == 0o600
