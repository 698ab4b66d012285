"""The controller's HTTP side under attack: bodies read before the caller is known, a
cookie header that confuses the CSRF check, the login limit, out-of-range ids and dates.

Each test here reproduced a finding of the trust review (issue 10) before its fix.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD

MiB = 1 << 20
BOUNDARY = "loaxa-test-boundary"


def multipart_chunks(total: int, chunk: int = MiB) -> Iterator[bytes]:
    """A multipart/form-data body with one file part of ``total`` bytes, lazily."""
    yield (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
           f"filename=\"big.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode()
    sent = 0
    block = b"\0" * chunk
    while sent < total:
        n = min(chunk, total - sent)
        yield block[:n]
        sent += n
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


class Pulled:
    """Counts the body bytes the app took before it started its response."""

    def __init__(self) -> None:
        self.total = 0
        self.at_response: int | None = None


def asgi_post(app: Any, path: str, headers: dict[str, str], chunks: Iterator[bytes],
              content_length: int | None = None, method: str = "POST"
              ) -> tuple[int, bytes, Pulled]:
    """Drive the real app at the ASGI level with a body that streams in as it is read,
    so the test sees exactly how much of it the app consumed before answering."""
    pulled = Pulled()
    status: list[int] = []
    body = bytearray()
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if content_length is not None:
        raw.append((b"content-length", str(content_length).encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": raw,
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80), "app": app,
             "state": {}}
    pending = iter(chunks)
    done = False

    async def receive() -> dict:
        nonlocal done
        if done:
            await asyncio.sleep(3600)  # like a client that keeps the connection open
        try:
            data = next(pending)
        except StopIteration:
            done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled.total += len(data)
        return {"type": "http.request", "body": data, "more_body": True}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
            pulled.at_response = pulled.total
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    async def run() -> None:
        await asyncio.wait_for(app(scope, receive, send), timeout=120)

    # in a thread of its own: a session's browser (Playwright) may hold this thread's loop
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()
    return status[0], bytes(body), pulled


def multipart_headers(token: str | None) -> dict[str, str]:
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return headers


def staff_token(controller: Any) -> str:
    from tests.conftest import make_user

    return make_user(controller, "bien-tap", "staff")["Authorization"].split()[1]


def test_an_upload_with_a_bad_token_is_refused_before_its_body_is_read(controller):
    """Finding: 949 MiB went to a temp file before the 401."""
    size = 64 * MiB
    status, body, pulled = asgi_post(controller.app, "/api/uploads",
                                     multipart_headers("not-a-token"), multipart_chunks(size))
    assert status == 401, body
    assert pulled.at_response is not None and pulled.at_response < MiB, (
        f"the app read {pulled.at_response / MiB:.1f} MiB before saying 401")
    # the same without any credential, and as a signed-in officer (no upload role)
    from tests.conftest import make_user

    officer = make_user(controller, "an-ninh", "officer")["Authorization"].split()[1]
    status, body, pulled = asgi_post(controller.app, "/api/uploads",
                                     multipart_headers(officer), multipart_chunks(size))
    assert status == 403, body
    assert pulled.at_response is not None and pulled.at_response < MiB


def test_an_oversized_upload_is_cut_off_while_it_streams(controller):
    """Finding: 1.9 GB was spooled as staff before the 413."""
    from broadcasts.uploads import MAX_BYTES

    token = staff_token(controller)
    size = MAX_BYTES + 30 * MiB
    # announced by Content-Length: refused before a byte is read
    status, body, pulled = asgi_post(controller.app, "/api/uploads", multipart_headers(token),
                                     multipart_chunks(size), content_length=size + 200)
    assert status == 413, body
    assert pulled.at_response == 0
    error = httpx.Response(413, content=body).json()["detail"]
    assert error["code"] == "body_too_large" and "MB" in error["message"]
    # chunked, no length: cut off as soon as the limit is passed
    status, body, pulled = asgi_post(controller.app, "/api/uploads", multipart_headers(token),
                                     multipart_chunks(size))
    assert status == 413, body
    assert pulled.at_response is not None and pulled.at_response <= MAX_BYTES + 2 * MiB, (
        f"read {pulled.at_response / MiB:.0f} MiB for a {MAX_BYTES / MiB:.0f} MiB limit")


def test_json_bodies_are_bounded_too(controller):
    big = 8 * MiB
    status, body, pulled = asgi_post(
        controller.app, "/api/lexicon", {"content-type": "application/json"},
        iter([b'{"term": "' + b"a" * big + b'"}']), content_length=big + 12, method="PUT")
    assert status == 413 and pulled.at_response == 0


def test_upload_errors_show_no_paths_only_a_code_and_a_vietnamese_message(controller):
    r = controller.post("/api/uploads", files={"file": ("x.wav", b"not audio at all " * 50,
                                                         "audio/wav")})
    assert r.status_code == 415, r.text
    detail = r.json()["detail"]
    assert detail["code"] == "upload_not_audio"
    assert "tệp" in detail["message"].lower()
    assert "/tmp" not in r.text and "upload:" not in r.text and "/" not in detail["message"]
    empty = controller.post("/api/uploads", files={"file": ("x.wav", b"", "audio/wav")})
    assert empty.status_code == 422 and empty.json()["detail"]["code"] == "upload_empty"


# --------------------------------------------------------------------------- CSRF

def test_a_malformed_cookie_pair_does_not_hide_the_session_from_the_csrf_check(controller):
    """Finding: ``zz="x; loaxa_session=…`` made the CSRF middleware see no cookies while
    authentication still read the session."""
    token = staff_token(controller)
    cookie = {"Cookie": f'zz="x; loaxa_session={token}', "Authorization": ""}
    r = controller.put("/api/lexicon", json={"term": "UBND", "reading": "uỷ ban"},
                       headers=cookie)
    assert r.status_code == 403, r.text
    r = controller.post("/api/uploads", headers=cookie,
                        files={"file": ("a.wav", b"RIFF", "audio/wav")})
    assert r.status_code == 403, r.text
    # the same session cookie with the CSRF token still works
    from controller.web.csrf import CSRF_COOKIE, new_token

    csrf = new_token(controller.runtime.secret_key)
    r = controller.put("/api/lexicon", json={"term": "UBND", "reading": "uỷ ban"}, headers={
        "Cookie": f'zz="x; loaxa_session={token}; {CSRF_COOKIE}={csrf}',
        "Authorization": "", "X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("header", [
    'zz="x; loaxa_session={t}', "loaxa_session={t}; bad cookie; x=1", "=; loaxa_session={t}",
    'a=b"; loaxa_session={t}', "loaxa_session={t},zz=1", "\x7f=1; loaxa_session={t}"])
def test_every_cookie_header_is_read_the_same_by_csrf_and_authentication(controller, header):
    from starlette.requests import Request

    from controller.api.deps import SESSION_COOKIE
    from controller.web.csrf import request_cookies

    value = header.format(t="abc.def.ghi")
    scope = {"type": "http", "headers": [(b"cookie", value.encode("latin-1"))]}
    assert request_cookies(scope).get(SESSION_COOKIE) == Request(scope).cookies.get(
        SESSION_COOKIE)


# --------------------------------------------------------------------------- login limit

def test_parallel_wrong_logins_are_all_counted(live_server):
    """Finding: 40 parallel attempts all got 401 (check, then verify, then count)."""
    limit = live_server.runtime.settings.login_attempts

    def attempt(_: int) -> int:
        with httpx.Client(base_url=live_server.base_url, timeout=60) as c:
            return c.post("/api/auth/token", data={"username": "staff",
                                                   "password": "wrong-password"}).status_code

    with ThreadPoolExecutor(40) as pool:
        codes = list(pool.map(attempt, range(40)))
    assert codes.count(401) <= limit, f"{codes.count(401)} wrong passwords were checked"
    assert codes.count(429) >= 40 - limit
    assert set(codes) <= {401, 429}


def test_x_forwarded_for_is_not_trusted_by_default(live_server):
    """Finding: rotating ``X-Forwarded-For`` from loopback reset the limit."""
    limit = live_server.runtime.settings.login_attempts
    codes = []
    with httpx.Client(base_url=live_server.base_url, timeout=30) as c:
        for i in range(limit + 3):
            codes.append(c.post("/api/auth/token", headers={"X-Forwarded-For": f"10.0.0.{i}"},
                                data={"username": "staff", "password": "nope"}).status_code)
    assert codes[:limit] == [401] * limit
    assert codes[limit:] == [429] * 3, codes


def test_trusted_proxies_are_a_setting(controller_settings, tmp_path):
    """With the proxy listed, its X-Forwarded-For names the client (and a second client
    behind it has its own limit) and X-Forwarded-Proto https makes the cookies Secure."""
    from tests.web.conftest import serve

    settings = controller_settings.model_copy(update={"trusted_proxies": ["127.0.0.1"]})
    with serve(settings) as base, httpx.Client(base_url=base, timeout=30) as c:
        limit = settings.login_attempts
        for _ in range(limit):
            assert c.post("/api/auth/token", headers={"X-Forwarded-For": "10.0.0.1"},
                          data={"username": "admin", "password": "nope"}).status_code == 401
        assert c.post("/api/auth/token", headers={"X-Forwarded-For": "10.0.0.1"},
                      data={"username": "admin", "password": "nope"}).status_code == 429
        assert c.post("/api/auth/token", headers={"X-Forwarded-For": "10.0.0.2"},
                      data={"username": "admin", "password": ADMIN_PASSWORD}
                      ).status_code == 200
        page = c.get("/login", headers={"X-Forwarded-Proto": "https"})
        assert "secure" in page.headers["set-cookie"].lower()
        plain = c.get("/login")
        assert "secure" not in plain.headers["set-cookie"].lower()


# --------------------------------------------------------------------------- 422, not 500

HUGE = str(2**63)


def test_ids_and_days_out_of_range_are_422_not_500(controller):
    from fastapi.testclient import TestClient

    client = TestClient(controller.app, raise_server_exceptions=False,
                        headers=dict(controller.headers))
    checks = {
        "GET /api/alerts?day=0001-01-01": client.get("/api/alerts", params={"day": "0001-01-01"}),
        "GET /api/alerts?day=9999-12-31": client.get("/api/alerts", params={"day": "9999-12-31"}),
        "GET /api/alerts?since=0001-01-01T00:00:00+14:00": client.get(
            "/api/alerts", params={"since": "0001-01-01T00:00:00+14:00"}),
        "GET /api/reports/daily?day=0001-01-01": client.get(
            "/api/reports/daily", params={"day": "0001-01-01"}),
        "GET /api/log?until=9999-12-31T23:59:59-12:00": client.get(
            "/api/log", params={"until": "9999-12-31T23:59:59-12:00"}),
        f"GET /api/announcements/{HUGE}": client.get(f"/api/announcements/{HUGE}"),
        f"GET /api/schedules/{HUGE}": client.get(f"/api/schedules/{HUGE}"),
        f"DELETE /api/tokens/{HUGE}": client.delete(f"/api/tokens/{HUGE}"),
        "GET /api/alerts/stream Last-Event-ID huge": client.get(
            "/api/alerts/stream", params={"max_s": 0.1}, headers={"Last-Event-ID": HUGE}),
    }
    bad = {k: f"{r.status_code} {r.text[:120]}" for k, r in checks.items()
           if r.status_code != 422}
    assert not bad, bad
    for r in checks.values():
        body = r.json()
        assert body["code"] == "invalid_request" and body["message"], body
        assert "Traceback" not in r.text and "OverflowError" not in r.text


def test_every_integer_path_parameter_is_bounded_in_the_schema(controller):
    """A route added later with a bare ``int`` id fails here, before it can 500."""
    from controller.api.deps import DB_ID_MAX

    unbounded = []
    for path, ops in controller.app.openapi()["paths"].items():
        for method, op in ops.items():
            for p in op.get("parameters", []):
                schema = p.get("schema", {})
                if p["in"] == "path" and schema.get("type") == "integer" and (
                        schema.get("maximum", float("inf")) > DB_ID_MAX):
                    unbounded.append(f"{method.upper()} {path} {p['name']}")
    assert sorted(set(unbounded) - PENDING_FOR_THE_LEAD) == []
    stale = PENDING_FOR_THE_LEAD - set(unbounded)
    assert not stale, f"now bounded, remove from PENDING_FOR_THE_LEAD: {sorted(stale)}"


PENDING_FOR_THE_LEAD: frozenset[str] = frozenset()


# --------------------------------------------------------------------------- helpers

def test_login_limit_is_one_atomic_step():
    """Unit level: the limiter hands out exactly ``attempts`` tries across threads."""
    from controller.security import LoginRateLimiter

    limiter = LoginRateLimiter(attempts=5, window_s=60)
    granted = []
    barrier = threading.Barrier(32)

    def go() -> None:
        barrier.wait()
        granted.append(limiter.attempt("u@h") == 0)

    threads = [threading.Thread(target=go) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert granted.count(True) == 5
    limiter.succeeded("u@h")
    assert limiter.attempt("u@h") == 0
