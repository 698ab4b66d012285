"""Shared route dependencies: the runtime, a database session, the signed-in user, roles,
and the typed parameters every route uses for database ids and days (out of range: 422)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from controller.api.errors import ErrorCode, api_error
from controller.runtime import Runtime
from controller.security import PEOPLE, ROLE_LABELS, Role
from controller.services import users

SESSION_COOKIE = "loaxa_session"
_bearer = HTTPBearer(auto_error=False)

# ------------------------------------------------------------------ typed parameters

DB_ID_MAX = 2**63 - 1
"""The largest id a database column holds (SQLite INTEGER, PostgreSQL BIGINT)."""
DbId = Annotated[int, Path(ge=1, le=DB_ID_MAX, description="a database id")]
NodeId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="a node id")]
"""A node id in a path: what the contract accepts as a topic segment (else 422, never a
failure deeper in)."""
"""Every integer id in a path: ``def get(announcement_id: DbId)``. Larger ids are a 422,
not an ``OverflowError`` in the database driver (a 500)."""

from controller.domain import DAY_MAX, DAY_MIN, Day, Instant  # noqa: E402,F401  (re-exported)

# ------------------------------------------------------------------ runtime and database

def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


# ------------------------------------------------------------------ who is calling

@dataclass(frozen=True)
class CurrentUser:
    username: str
    role: Role
    full_name: str = ""
    session_jti: str | None = None
    """The sign-in session this request came with (None for an API token)."""
    token_id: int | None = None
    """The API token this request came with (None for a session)."""
    commune: str | None = None
    """The commune the account works for; None: the province (controller/scope.py)."""


def credential_of(request: Request, bearer: HTTPAuthorizationCredentials | None) -> str | None:
    """The bearer token, else the session cookie (``request.cookies``: the parser the
    CSRF check uses too, so both always see the same session)."""
    return bearer.credentials if bearer else request.cookies.get(SESSION_COOKIE)


def signed_in_user(request: Request, runtime: RuntimeDep,
                   bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
                   ) -> CurrentUser | None:
    """Whoever the request's credential names, if it is valid; None otherwise. Resolved
    once per request (FastAPI caches it): the user and the database session both use it."""
    credential = credential_of(request, bearer)
    if not credential:
        return None
    with runtime.db.session() as s:
        principal = users.resolve(s, runtime.secret_key, credential)
        if principal is None:
            return None
        user = principal.user
        return CurrentUser(user.username, Role(user.role), user.full_name,
                           session_jti=principal.session_jti, token_id=principal.token_id,
                           commune=user.commune)


def current_user(request: Request,
                 bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                 user: Annotated[CurrentUser | None, Depends(signed_in_user)]) -> CurrentUser:
    """From ``Authorization: Bearer …`` (API: a session token or an API token) or the
    session cookie (pages). Checked against the database on every request."""
    if user is not None:
        return user
    if not credential_of(request, bearer):
        raise api_error(status.HTTP_401_UNAUTHORIZED, ErrorCode.sign_in_required,
                        "Cần đăng nhập.", headers={"WWW-Authenticate": "Bearer"})
    raise api_error(status.HTTP_401_UNAUTHORIZED, ErrorCode.session_ended,
                    "Phiên đăng nhập không hợp lệ hoặc đã kết thúc: hãy đăng nhập lại.",
                    headers={"WWW-Authenticate": "Bearer"})


CallerDep = Annotated[CurrentUser, Depends(current_user)]
"""Whoever is signed in, of any role: only :func:`require` reads it; routes say which
roles they admit."""


def home_commune(user: CurrentUser, runtime: Runtime) -> str:
    """The commune whose own words (lexicon) a user reads and edits: their commune's, or
    for a province account the deployment's default commune."""
    return user.commune or runtime.settings.default_commune


def get_session(runtime: RuntimeDep,
                user: Annotated[CurrentUser | None, Depends(signed_in_user)]
                ) -> Iterator[Session]:
    """The request's transaction, limited to the caller's commune (controller/scope.py;
    a province account's and a signed-out caller's see everything they are let see by
    their route). It commits (and its effects go out) when the route returns, before the
    answer is sent (``scope="function"``): a client that uses what it was just given (a
    new token, a new id) never finds it not there yet."""
    with runtime.db.session(commune=user.commune if user else None) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def require(*roles: Role) -> Callable[[CurrentUser], CurrentUser]:
    """A dependency that lets only these roles through (admin always passes)."""
    allowed = {*roles, Role.admin}

    def check(user: CallerDep) -> CurrentUser:
        if user.role not in allowed:
            names = ", ".join(ROLE_LABELS[r] for r in Role if r in allowed)
            raise api_error(status.HTTP_403_FORBIDDEN, ErrorCode.forbidden,
                            f"Tài khoản của bạn không có quyền này (cần: {names}).")
        return user

    return check


UserDep = Annotated[CurrentUser, Depends(require(*PEOPLE))]
"""Any person signed in (a system account such as ``upstream`` is refused: 403)."""
AnyUser = UserDep
Staff = Annotated[CurrentUser, Depends(require(Role.staff, Role.leader))]
Leader = Annotated[CurrentUser, Depends(require(Role.leader))]
Officer = Annotated[CurrentUser, Depends(require(Role.officer, Role.leader))]
Admin = Annotated[CurrentUser, Depends(require())]
Upstream = Annotated[CurrentUser, Depends(require(Role.upstream))]
"""The provincial source information system's account (and admins)."""
UpstreamReader = Annotated[CurrentUser, Depends(require(Role.upstream, Role.leader))]
"""Province statistics: the upstream system, leaders and admins (a commune leader's
answer holds their commune only)."""
