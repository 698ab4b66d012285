"""Database engine and sessions; the schema itself is migrated by Alembic at start."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from controller import scope

MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):  # type: ignore[no-untyped-def]
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(url: str) -> None:
    """Bring the database to the newest schema (alembic upgrade head)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")


class Database:
    """The engine and its sessions. ``session.info`` belongs to one transaction: what a
    change notes there (its side effects, its audit record) is handed to the commit hooks
    and then cleared, and a rollback just clears it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._commit_hooks: list[Callable[[Session], None]] = []
        event.listen(self._sessions, "after_commit", self._committed)
        event.listen(self._sessions, "after_rollback", self._rolled_back)

    def on_commit(self, hook: Callable[[Session], None]) -> None:
        """Call ``hook(session)`` after each commit, before its ``info`` is cleared."""
        self._commit_hooks.append(hook)

    def _committed(self, session: Session) -> None:
        try:
            for hook in self._commit_hooks:
                hook(session)
        finally:
            session.info.clear()

    @staticmethod
    def _rolled_back(session: Session) -> None:
        session.info.clear()

    @contextmanager
    def session(self, commune: str | None = None) -> Iterator[Session]:
        """One transaction. With ``commune``, it sees and changes that commune's records
        only (controller/scope.py); without, everything (the runtime, province accounts)."""
        with self._sessions() as session, session.begin():
            if commune is not None:
                scope.limit(session, commune)
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
