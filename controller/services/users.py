"""Accounts: created by an admin (or bootstrapped from settings), passwords hashed."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.models import User
from controller.security import Role, hash_password, verify_password

# a real hash to compare against for unknown users, so timing does not reveal them
_DUMMY_HASH = hash_password("not-a-real-password")


class UserError(ValueError):
    pass


def get_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def create_user(session: Session, username: str, password: str, role: Role,
                full_name: str = "") -> User:
    if get_user(session, username) is not None:
        raise UserError(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), role=role.value,
                full_name=full_name, active=True)
    session.add(user)
    session.flush()
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
        create_user(session, username, password, Role.admin, "Administrator")


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))
