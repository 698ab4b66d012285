"""Shared route dependencies: the runtime, a database session, the signed-in user, roles."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from controller.runtime import Runtime
from controller.security import Role, decode_token
from controller.services.users import get_user

SESSION_COOKIE = "loaxa_session"
_bearer = HTTPBearer(auto_error=False)


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def get_session(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Iterator[Session]:
    with runtime.db.session() as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionDep = Annotated[Session, Depends(get_session)]


@dataclass(frozen=True)
class CurrentUser:
    username: str
    role: Role
    full_name: str = ""


def current_user(request: Request, runtime: RuntimeDep,
                 bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
                 ) -> CurrentUser:
    """From ``Authorization: Bearer …`` (API) or the session cookie (pages)."""
    token = bearer.credentials if bearer else request.cookies.get(SESSION_COOKIE)
    claims = decode_token(runtime.secret_key, token) if token else None
    if not claims:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in first",
                            headers={"WWW-Authenticate": "Bearer"})
    with runtime.db.session() as s:
        user = get_user(s, claims["sub"])
        if user is None or not user.active:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "account disabled or removed")
        return CurrentUser(user.username, Role(user.role), user.full_name)


UserDep = Annotated[CurrentUser, Depends(current_user)]


def require(*roles: Role) -> Callable[[CurrentUser], CurrentUser]:
    """A dependency that lets only these roles through (admin always passes)."""
    allowed = {*roles, Role.admin}

    def check(user: UserDep) -> CurrentUser:
        if user.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs one of: {names}")
        return user

    return check


AnyUser = UserDep
Staff = Annotated[CurrentUser, Depends(require(Role.staff, Role.leader))]
Leader = Annotated[CurrentUser, Depends(require(Role.leader))]
Officer = Annotated[CurrentUser, Depends(require(Role.officer, Role.leader))]
Admin = Annotated[CurrentUser, Depends(require())]
