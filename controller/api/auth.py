from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status

from controller.api.deps import Admin, AnyUser, RuntimeDep, SessionDep
from controller.schemas import TokenOut, UserIn, UserOut
from controller.security import Role, create_token
from controller.services import users

router = APIRouter(tags=["accounts"])


def client_key(request: Request, username: str) -> str:
    host = request.client.host if request.client else "?"
    return f"{username.lower()}@{host}"


@router.post("/api/auth/token", response_model=TokenOut)
def login(request: Request, runtime: RuntimeDep, session: SessionDep,
          username: Annotated[str, Form(max_length=64)],
          password: Annotated[str, Form(max_length=256)]) -> TokenOut:
    """OAuth2 password login: a bearer token for the API (rate-limited per user and client)."""
    key = client_key(request, username)
    wait = runtime.login_limiter.retry_after(key)
    if wait > 0:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            f"too many failed logins; try again in {wait:.0f} s",
                            headers={"Retry-After": str(int(wait) + 1)})
    user = users.authenticate(session, username, password)
    if user is None:
        runtime.login_limiter.failed(key)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    runtime.login_limiter.succeeded(key)
    ttl = timedelta(hours=runtime.settings.token_ttl_h)
    token = create_token(runtime.secret_key, user.username, user.role, ttl)
    return TokenOut(access_token=token, role=user.role, expires_in=int(ttl.total_seconds()))


@router.get("/api/auth/me", response_model=UserOut)
def me(user: AnyUser, session: SessionDep) -> UserOut:
    return UserOut.model_validate(users.get_user(session, user.username))


@router.get("/api/users", response_model=list[UserOut])
def list_users(_: Admin, session: SessionDep) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in users.list_users(session)]


@router.post("/api/users", response_model=UserOut, status_code=201)
def create_user(body: UserIn, admin: Admin, session: SessionDep) -> UserOut:
    from controller.services import audit

    try:
        user = users.create_user(session, body.username, body.password, Role(body.role),
                                 body.full_name)
    except users.UserError as exc:
        raise HTTPException(409, str(exc)) from None
    audit.record(session, admin.username, "create_user", "user", user.username, role=user.role)
    return UserOut.model_validate(user)
