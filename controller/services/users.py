"""Accounts: created by an admin (or bootstrapped from settings), passwords hashed;
the sessions and API tokens that speak for them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from controller.models import ApiToken, Commune, User, UserSession
from controller.security import (
    PROVINCE_ONLY,
    ROLE_LABELS,
    Role,
    create_token,
    decode_token,
    hash_password,
    verify_password,
)
from controller.services import audit

# a real hash to compare against for unknown users, so timing does not reveal them
_DUMMY_HASH = hash_password("not-a-real-password")


class UserError(ValueError):
    pass


def get_user(session: Session, username: str) -> User | None:
    if "\x00" in username:  # no account has one, and PostgreSQL refuses it in a query
        return None
    return session.scalar(select(User).where(User.username == username))


class AccountCommuneError(UserError):
    """An account's commune that cannot be: ``message`` says why, in Vietnamese."""

    def __init__(self, detail: str, message: str) -> None:
        super().__init__(detail)
        self.message = message


def check_commune(session: Session, role: Role, commune: str | None) -> None:
    """An account's commune must be one of the deployment's, and administrators and the
    upstream system are province accounts (they manage nodes and accounts, or deliver
    bulletins and read statistics, of every commune)."""
    if commune is None:
        return
    if role in PROVINCE_ONLY:
        raise AccountCommuneError(f"a {role} account is a province account (no commune)",
                                  f"Tài khoản {ROLE_LABELS[role].lower()} là tài khoản của "
                                  "tỉnh, không thuộc xã.")
    if session.get(Commune, commune) is None:
        raise AccountCommuneError(f"no commune {commune!r}", "Không có xã này.")


def create_user(session: Session, username: str, password: str, role: Role,
                full_name: str = "", actor: str | None = None,
                commune: str | None = None) -> User:
    """A new active account, of ``commune`` (None: the province); audited as ``actor``'s
    change (the bootstrap admin and test fixtures make accounts with no actor)."""
    if get_user(session, username) is not None or username in set(audit.Automatic):
        raise UserError(f"user {username!r} already exists")
    check_commune(session, role, commune)
    user = User(username=username, password_hash=hash_password(password), role=role.value,
                full_name=full_name, active=True, commune=commune)
    session.add(user)
    session.flush()
    if actor is not None:
        audit.record(session, actor, "create_user", "user", user.username, role=user.role,
                     commune=commune)
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = get_user(session, username)
    if user is None or not user.active:
        verify_password(_DUMMY_HASH, password)
        return None
    return user if verify_password(user.password_hash, password) else None


def ensure_bootstrap_admin(session: Session, username: str, password: str | None) -> None:
    """Create the first admin from settings when there are no users yet."""
    if password and session.scalar(select(func.count(User.id))) == 0:
        create_user(session, username, password, Role.admin, "Quản trị viên")


def full_names(session: Session) -> dict[str, str]:
    """username → full name (or the username when none is set): pages say who by name;
    the controller's own steps by what they are (:class:`~controller.services.audit.Automatic`)."""
    return {**{str(a): name for a, name in audit.AUTOMATIC_NAMES.items()},
            **{u.username: u.full_name or u.username for u in session.scalars(select(User))}}


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


# ----------------------------------------------------------------- sessions and tokens
#
# Every credential the API accepts is checked against the database on every request:
# a session token (a JWT from a sign-in) must name a session that has not ended, and an
# API token must exist and not be revoked; both belong to an active account. So logout,
# a password change, revoking a token or disabling an account take effect at once.

API_TOKEN_PREFIX = "loaxa_"
LAST_USED_EVERY = timedelta(minutes=1)
"""An API token's ``last_used_at`` is written at most this often (not on every call)."""


@dataclass(frozen=True)
class Principal:
    """Who a credential speaks for, and which credential it was (to end it)."""

    user: User
    session_jti: str | None = None
    token_id: int | None = None


def sign_in(session: Session, user: User, secret: str, ttl: timedelta) -> str:
    """A new session for ``user``: its row, and the signed token that names it."""
    now = datetime.now(UTC)
    session.execute(delete(UserSession).where(UserSession.expires_at < now - timedelta(days=1)))
    jti = secrets.token_hex(16)
    session.add(UserSession(jti=jti, user_id=user.id, created_at=now, expires_at=now + ttl))
    session.flush()
    return create_token(secret, user.username, user.role, ttl, jti=jti)


def end_session(session: Session, jti: str, actor: str) -> None:
    """Sign out: the session's token is refused from now on, wherever it was copied."""
    audit.record(session, actor, "sign_out", "user", actor)
    session.execute(update(UserSession).where(UserSession.jti == jti,
                                              UserSession.ended_at.is_(None))
                    .values(ended_at=datetime.now(UTC)))


def end_all_sessions(session: Session, user: User) -> int:
    """Ends every open session of ``user`` (a password change: copies of old tokens die)."""
    done = session.execute(update(UserSession).where(UserSession.user_id == user.id,
                                                     UserSession.ended_at.is_(None))
                           .values(ended_at=datetime.now(UTC)))
    return done.rowcount or 0


def change_password(session: Session, user: User, new_password: str) -> None:
    """The account's own change: every session of it ends (copies of old tokens die)."""
    user.password_hash = hash_password(new_password)
    ended = end_all_sessions(session, user)
    audit.record(session, user.username, "change_password", "user", user.username,
                 sessions_ended=ended)


def resolve(session: Session, secret: str, credential: str) -> Principal | None:
    """The account a bearer token or session cookie speaks for, or None (refuse)."""
    if credential.startswith(API_TOKEN_PREFIX):
        return _resolve_api_token(session, credential)
    claims = decode_token(secret, credential)
    if not claims or not isinstance(claims.get("jti"), str):
        return None
    row = session.scalar(select(UserSession).where(UserSession.jti == claims["jti"]))
    if row is None or row.ended_at is not None or row.expires_at <= datetime.now(UTC):
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active or user.username != claims.get("sub"):
        return None
    return Principal(user, session_jti=row.jti)


def _split_api_token(token: str) -> tuple[int, str] | None:
    body = token.removeprefix(API_TOKEN_PREFIX)
    token_id, _, secret = body.partition("_")
    if not token_id.isdigit() or len(token_id) > 18 or not secret:
        return None
    return int(token_id), secret


def _secret_hash(secret: str) -> str:
    """SHA-256 is enough: the secret is 256 random bits, not a password to guess."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _resolve_api_token(session: Session, token: str) -> Principal | None:
    parts = _split_api_token(token)
    if parts is None:
        return None
    row = session.get(ApiToken, parts[0])
    if row is None or not hmac.compare_digest(row.secret_sha256, _secret_hash(parts[1])):
        return None
    now = datetime.now(UTC)
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_EVERY:
        row.last_used_at = now
    return Principal(user, token_id=row.id)


def create_api_token(session: Session, user: User, name: str, created_by: str,
                     ttl: timedelta | None) -> tuple[ApiToken, str]:
    """The row and the token itself (``loaxa_<id>_<secret>``), which is never stored."""
    secret = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    row = ApiToken(name=name, user_id=user.id, secret_sha256=_secret_hash(secret),
                   created_by=created_by, created_at=now,
                   expires_at=now + ttl if ttl else None)
    session.add(row)
    session.flush()
    audit.record(session, created_by, "create_api_token", "api_token", row.id, name=name,
                 acts_as=user.username)
    return row, f"{API_TOKEN_PREFIX}{row.id}_{secret}"


def list_api_tokens(session: Session) -> list[tuple[ApiToken, str]]:
    rows = session.execute(select(ApiToken, User.username).join(User, ApiToken.user_id == User.id)
                           .order_by(ApiToken.id))
    return [(t, name) for t, name in rows]


def revoke_api_token(session: Session, token_id: int, by: str) -> ApiToken | None:
    row = session.get(ApiToken, token_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at, row.revoked_by = datetime.now(UTC), by
        audit.record(session, by, "revoke_api_token", "api_token", token_id)
    return row


# ----------------------------------------------------------------- an admin's changes
#
# Editing, locking and resetting an account are an admin's changes to someone else: each
# is one audit record naming the admin. Locking and a reset end every session and API
# token of the account at once (a locked person's open tab or a leaked token stops on its
# next request, not when it expires).

GENERATED_PASSWORD_BYTES = 9
"""A generated password: 12 URL-safe characters (72 random bits), read out once."""


def _account(session: Session, username: str) -> User:
    user = get_user(session, username)
    if user is None:
        raise UserError(f"no user {username!r}")
    return user


def _end_credentials(session: Session, user: User, by: str) -> tuple[int, int]:
    """Every open session and unrevoked API token of ``user`` ends now."""
    ended = end_all_sessions(session, user)
    now = datetime.now(UTC)
    revoked = session.execute(update(ApiToken).where(ApiToken.user_id == user.id,
                                                     ApiToken.revoked_at.is_(None))
                              .values(revoked_at=now, revoked_by=by)).rowcount or 0
    return ended, revoked


KEEP = object()
"""``update_user(commune=KEEP)``: the account's commune is not changed."""


def update_user(session: Session, username: str, actor: str, *, full_name: str | None = None,
                role: Role | None = None, commune: object = KEEP) -> User:
    """A new name, role or commune (None: the province). An admin cannot take their own
    admin role away (the station would be left with nobody to undo it)."""
    user = _account(session, username)
    if role is not None and username == actor and role != Role.admin:
        raise UserError("an admin cannot demote themselves")
    changed: dict[str, object] = {}
    if commune is not KEEP and commune != user.commune:
        assert commune is None or isinstance(commune, str)
        check_commune(session, role or Role(user.role), commune)
        changed["commune_before"], changed["commune"] = user.commune, commune
        user.commune = commune
    elif role is not None:
        check_commune(session, role, user.commune)
    if full_name is not None and full_name != user.full_name:
        changed["full_name"], user.full_name = full_name, full_name
    if role is not None and role != user.role:
        # every request reads the role from here: the change applies to open sessions too
        changed["role_before"], changed["role"] = user.role.value, role.value
        user.role = role
    audit.record(session, actor, "update_user", "user", username, **changed)
    return user


def set_locked(session: Session, username: str, locked: bool, actor: str) -> User:
    """Lock (every session and API token ends; sign-in is refused) or unlock an account.
    Unlocking does not bring old tokens back: the person signs in again."""
    user = _account(session, username)
    if locked and username == actor:
        raise UserError("an admin cannot lock themselves")
    user.active = not locked
    if locked:
        ended, revoked = _end_credentials(session, user, actor)
        audit.record(session, actor, "lock_user", "user", username, sessions_ended=ended,
                     tokens_revoked=revoked)
    else:
        audit.record(session, actor, "unlock_user", "user", username)
    return user


def reset_password(session: Session, username: str, actor: str,
                   new_password: str | None = None) -> str:
    """Set ``new_password`` (the admin chose it) or a generated one, which is returned to
    be shown once and never stored in clear. Every session of the account ends (API
    tokens stay: they are integrations', revoked on their own)."""
    user = _account(session, username)
    password = new_password or secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
    user.password_hash = hash_password(password)
    ended = end_all_sessions(session, user)
    audit.record(session, actor, "reset_password", "user", username, sessions_ended=ended,
                 generated=new_password is None)
    return password
