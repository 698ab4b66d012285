"""Passwords (argon2), access tokens (JWT), roles and a login rate limiter.

The same signed token works as an API bearer token and inside the HttpOnly session
cookie of the web pages, so one check guards both.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ALGORITHM = "HS256"
_hasher = PasswordHasher()


class Role(StrEnum):
    admin = "admin"  # nodes, users
    staff = "staff"  # biên tập: compose and schedule
    leader = "leader"  # lãnh đạo: approve, emergency
    officer = "officer"  # an ninh: camera alerts
    upstream = "upstream"  # hệ thống nguồn: the province's system, through its API token


ROLE_LABELS = {Role.admin: "Quản trị", Role.staff: "Biên tập", Role.leader: "Lãnh đạo",
               Role.officer: "An ninh", Role.upstream: "Hệ thống nguồn"}
"""The roles as people call them (pages, refusals): the one list."""
PEOPLE = frozenset({Role.admin, Role.staff, Role.leader, Role.officer})
"""The roles of people: every page and every general API route serves these. A system
role (``upstream``, the provincial source information system) reaches only the routes
that name it (``controller/api/upstream.py``)."""
PROVINCE_ONLY = frozenset({Role.admin, Role.upstream})
"""Roles whose accounts are always the province's (no commune)."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def load_or_create_secret(path: Path) -> str:
    """The signing key: kept in the data folder so tokens survive a restart.

    Created with mode 0600 from the first byte (``O_EXCL``: never a moment readable by
    others, never two different keys from two replicas starting together); an existing
    key file that others may read is tightened to 0600."""
    if path.exists():
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another replica made it first: use that one
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(key)
    return key


def create_token(secret: str, username: str, role: str, ttl: timedelta,
                 jti: str | None = None) -> str:
    """A signed token. It is only accepted while the session named by ``jti`` is open
    (``services.users.sign_in`` creates both; ``resolve`` checks both)."""
    now = datetime.now(UTC)
    claims = {"sub": username, "role": role, "iat": now, "exp": now + ttl,
              "jti": jti or secrets.token_hex(16)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(secret: str, token: str) -> dict | None:
    try:
        return jwt.decode(token, secret, algorithms=[ALGORITHM],
                          options={"require": ["exp", "sub", "jti"]})
    except jwt.PyJWTError:
        return None


class LoginRateLimiter:
    """At most ``attempts`` unsuccessful logins per key (user and client address) per
    window. The client address is the socket's peer unless it is one of the trusted
    proxies (``LOAXA_TRUSTED_PROXIES``), so a forged ``X-Forwarded-For`` changes nothing.

    In memory, per controller process: enough to stop password guessing against one
    replica; a multi-replica deployment also rate-limits at its reverse proxy.
    """

    def __init__(self, attempts: int = 5, window_s: float = 300.0) -> None:
        self.attempts, self.window_s = attempts, window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def attempt(self, key: str) -> float:
        """Check and count in one step: 0 lets this attempt go on (it already counts as a
        failure until :meth:`succeeded` clears it), otherwise the seconds to wait.

        Checking first and counting after the slow password hash let 40 parallel
        attempts all through; counting up front leaves no window between the two.
        """
        now = time.monotonic()
        with self._lock:
            failures = self._failures.setdefault(key, deque())
            while failures and now - failures[0] > self.window_s:
                failures.popleft()
            if len(failures) >= self.attempts:
                return max(self.window_s - (now - failures[0]), 0.001)
            failures.append(now)
            return 0.0

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
