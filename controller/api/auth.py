"""Accounts: sign in (rate-limited), sign out and change password (both end sessions on
the server), users, and the API tokens that integrations use (admin only)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Path, Request, status
from pydantic import BaseModel, Field

from controller.api.deps import Admin, AnyUser, DbId, RuntimeDep, SessionDep
from controller.api.errors import ErrorCode, api_error
from controller.models import ApiToken, User
from controller.runtime import Runtime
from controller.schemas import CommuneCode, In, TokenOut, UserIn, UserOut
from controller.security import Role
from controller.services import users

router = APIRouter(tags=["accounts"])


class PasswordIn(In):
    current_password: str = Field(max_length=256)
    new_password: str = Field(min_length=10, max_length=256)


class ApiTokenIn(In):
    name: str = Field(min_length=1, max_length=100, description="what the token is for")
    username: str = Field(max_length=64, description="the account it acts as (its role)")
    expires_in_days: int | None = Field(default=None, ge=1, le=3650,
                                        description="omitted: until revoked")


class ApiTokenOut(BaseModel):
    id: int
    name: str
    username: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiTokenCreated(ApiTokenOut):
    token: str = Field(description="shown this once; only its hash is kept")


def client_key(request: Request, username: str) -> str:
    """The login limit's key: the user and the client address. The address is the
    socket's peer, or what a trusted proxy says (``LOAXA_TRUSTED_PROXIES``), never a
    header from anyone else."""
    host = request.client.host if request.client else "?"
    return f"{username.lower()}@{host}"


def too_many(wait: float) -> HTTPException:
    return api_error(status.HTTP_429_TOO_MANY_REQUESTS, ErrorCode.too_many_attempts,
                     f"Nhập sai quá nhiều lần. Thử lại sau {wait:.0f} giây.",
                     headers={"Retry-After": str(int(wait) + 1)})


def check_password(runtime: Runtime, key: str, session: SessionDep, username: str,
                   password: str) -> User | None:
    """The one place a password is tried: counted before the hash is checked, so
    parallel attempts cannot all slip through (429 once the limit is reached)."""
    wait = runtime.login_limiter.attempt(key)
    if wait > 0:
        raise too_many(wait)
    account = users.authenticate(session, username, password)
    if account is not None:
        runtime.login_limiter.succeeded(key)
    return account


def new_session(runtime: Runtime, session: SessionDep, account: User) -> TokenOut:
    ttl = timedelta(hours=runtime.settings.token_ttl_h)
    token = users.sign_in(session, account, runtime.secret_key, ttl)
    return TokenOut(access_token=token, role=account.role, expires_in=int(ttl.total_seconds()))


@router.post("/api/auth/token", response_model=TokenOut)
def login(request: Request, runtime: RuntimeDep, session: SessionDep,
          username: Annotated[str, Form(max_length=64)],
          password: Annotated[str, Form(max_length=256)]) -> TokenOut:
    """OAuth2 password login: a bearer token for the API (rate-limited per user and client);
    it names a session that ``POST /api/auth/logout`` ends."""
    account = check_password(runtime, client_key(request, username), session, username,
                             password)
    if account is None:
        raise api_error(status.HTTP_401_UNAUTHORIZED, ErrorCode.wrong_password,
                        "Sai tên đăng nhập hoặc mật khẩu.")
    return new_session(runtime, session, account)


@router.post("/api/auth/logout", status_code=204)
def logout(user: AnyUser, session: SessionDep) -> None:
    """End this session on the server: the token (or cookie) is refused from now on, also
    anywhere it was copied to. An API token is revoked by an admin instead."""
    if user.session_jti is None:
        raise api_error(status.HTTP_409_CONFLICT, ErrorCode.conflict,
                        "Mã API không đăng xuất được: quản trị viên thu hồi nó.")
    users.end_session(session, user.session_jti, user.username)


@router.post("/api/auth/password", response_model=TokenOut)
def change_password(body: PasswordIn, request: Request, user: AnyUser, runtime: RuntimeDep,
                    session: SessionDep) -> TokenOut:
    """Change your password: every session of the account ends (a stolen token with it);
    the answer is a new token for this one."""
    if user.session_jti is None:
        raise api_error(status.HTTP_409_CONFLICT, ErrorCode.conflict,
                        "Mã API không đổi được mật khẩu của tài khoản.")
    account = check_password(runtime, client_key(request, user.username), session,
                             user.username, body.current_password)
    if account is None:
        raise api_error(status.HTTP_403_FORBIDDEN, ErrorCode.wrong_password,
                        "Mật khẩu hiện tại không đúng.")
    users.change_password(session, account, body.new_password)
    return new_session(runtime, session, account)


@router.get("/api/auth/me", response_model=UserOut)
def me(user: AnyUser, session: SessionDep) -> UserOut:
    return UserOut.model_validate(users.get_user(session, user.username))


@router.get("/api/users", response_model=list[UserOut])
def list_users(_: Admin, session: SessionDep) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in users.list_users(session)]


@router.post("/api/users", response_model=UserOut, status_code=201)
def create_user(body: UserIn, admin: Admin, session: SessionDep) -> UserOut:
    try:
        user = users.create_user(session, body.username, body.password, Role(body.role),
                                 body.full_name, actor=admin.username, commune=body.commune)
    except users.AccountCommuneError as exc:
        raise api_error(422, ErrorCode.invalid_request, exc.message) from None
    except users.UserError:
        raise api_error(409, ErrorCode.conflict,
                        f"Tài khoản {body.username} đã có.") from None
    return UserOut.model_validate(user)


Username = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$",
                               description="an account's username")]


class UserPatch(In):
    full_name: str | None = Field(default=None, max_length=200)
    role: Role | None = None
    commune: CommuneCode | None = Field(
        default=None, description="the account's commune; null: the province; omitted: kept")


class ResetIn(In):
    password: str | None = Field(default=None, min_length=10, max_length=256,
                                 description="omitted: one is generated and shown once")


class ResetOut(BaseModel):
    username: str
    password: str = Field(description="shown this once; only its hash is kept")
    generated: bool


USER_REFUSALS = {
    "an admin cannot demote themselves": "Không thể tự bỏ quyền quản trị của mình.",
    "an admin cannot lock themselves": "Không thể tự khoá tài khoản của mình.",
}


def _user_change(username: str, change: Callable[[], User]) -> UserOut:
    """The service's refusals as Vietnamese 404/409 answers."""
    try:
        return UserOut.model_validate(change())
    except users.AccountCommuneError as exc:
        raise api_error(422, ErrorCode.invalid_request, exc.message) from None
    except users.UserError as exc:
        if str(exc) in USER_REFUSALS:
            raise api_error(409, ErrorCode.conflict, USER_REFUSALS[str(exc)]) from None
        raise api_error(404, ErrorCode.not_found, f"Không có tài khoản {username}.") from None


@router.patch("/api/users/{username}", response_model=UserOut)
def update_user(username: Username, body: UserPatch, admin: Admin,
                session: SessionDep) -> UserOut:
    """A new full name or role (applies at once, to open sessions too)."""
    commune = body.commune if "commune" in body.model_fields_set else users.KEEP
    return _user_change(username, lambda: users.update_user(
        session, username, admin.username, full_name=body.full_name, role=body.role,
        commune=commune))


@router.post("/api/users/{username}/lock", response_model=UserOut)
def lock_user(username: Username, admin: Admin, session: SessionDep) -> UserOut:
    """Sign-in refused; every session and API token of the account ends now."""
    return _user_change(username, lambda: users.set_locked(session, username, True,
                                                           admin.username))


@router.post("/api/users/{username}/unlock", response_model=UserOut)
def unlock_user(username: Username, admin: Admin, session: SessionDep) -> UserOut:
    """Sign-in allowed again (old sessions and tokens stay ended)."""
    return _user_change(username, lambda: users.set_locked(session, username, False,
                                                           admin.username))


@router.post("/api/users/{username}/password", response_model=ResetOut)
def reset_password(username: Username, body: ResetIn, admin: Admin,
                   session: SessionDep) -> ResetOut:
    """A new password: the admin's, or a generated one returned here once. Every session
    of the account ends."""
    if users.get_user(session, username) is None:
        raise api_error(404, ErrorCode.not_found, f"Không có tài khoản {username}.")
    password = users.reset_password(session, username, admin.username, body.password)
    return ResetOut(username=username, password=password, generated=body.password is None)


# ------------------------------------------------------------------ API tokens

def token_out(row: ApiToken, username: str) -> ApiTokenOut:
    return ApiTokenOut(id=row.id, name=row.name, username=username, created_by=row.created_by,
                       created_at=row.created_at, expires_at=row.expires_at,
                       last_used_at=row.last_used_at, revoked_at=row.revoked_at)


@router.get("/api/tokens", response_model=list[ApiTokenOut])
def list_tokens(_: Admin, session: SessionDep) -> list[ApiTokenOut]:
    """Every API token (revoked ones too), never the secret."""
    return [token_out(row, name) for row, name in users.list_api_tokens(session)]


@router.post("/api/tokens", response_model=ApiTokenCreated, status_code=201)
def create_token(body: ApiTokenIn, admin: Admin, session: SessionDep) -> ApiTokenCreated:
    """A token for an integration, acting as ``username`` (create an account with the
    role it needs first). Send it as ``Authorization: Bearer …``; it is shown only here."""
    account = users.get_user(session, body.username)
    if account is None or not account.active:
        raise api_error(404, ErrorCode.not_found, f"Không có tài khoản {body.username}.")
    ttl = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    row, token = users.create_api_token(session, account, body.name, admin.username, ttl)
    return ApiTokenCreated(**token_out(row, account.username).model_dump(), token=token)


@router.delete("/api/tokens/{token_id}", status_code=204)
def revoke_token(token_id: DbId, admin: Admin, session: SessionDep) -> None:
    """Refused from the next request on."""
    row = users.revoke_api_token(session, token_id, admin.username)
    if row is None:
        raise api_error(404, ErrorCode.not_found, f"Không có mã API số {token_id}.")

