"""One replica compiles plans on schedule: a lease in the database decides which.

Several controller replicas may share one database (PostgreSQL at scale). They all
answer the API and split alert ingestion (MQTT 5 shared subscription), but the periodic
plan roll-out should run once, not once per replica. The lease is taken or renewed with a
single conditional UPDATE (atomic on SQLite and PostgreSQL alike); a replica that dies
loses it when it expires, and another takes over.

Any replica may still compile the plans its own change implies (an announcement approved
on replica B goes out from B at once); :func:`hold_compile_lock` makes those compiles take
turns across replicas, so two never bump one node's version from the same reading.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controller.models import Lease

PLAN_COMPILER = "plan-compiler"
COMPILE_LOCK_KEY = 0x6C6F61786101
"""PostgreSQL advisory lock id of plan compiling ("loaxa" + 1)."""


def hold_compile_lock(session: Session) -> None:
    """Until ``session``'s transaction ends, no other replica compiles plans. PostgreSQL:
    a transaction-level advisory lock (released by commit, rollback or a dead
    connection, so a SIGKILLed compiler never holds it). SQLite has one writer per
    database file and one controller process: nothing to take."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": COMPILE_LOCK_KEY})


def acquire(session: Session, name: str, holder: str, ttl: timedelta,
            now: datetime | None = None) -> bool:
    """Take or renew lease ``name`` for ``holder``; True when ``holder`` has it now."""
    now = now or datetime.now(UTC)
    result = session.execute(
        update(Lease)
        .where(Lease.name == name, (Lease.holder == holder) | (Lease.expires_at < now))
        .values(holder=holder, expires_at=now + ttl))
    if result.rowcount == 1:
        return True
    if session.get(Lease, name) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(Lease(name=name, holder=holder, expires_at=now + ttl))
    except IntegrityError:
        return False  # another replica created it first
    return True
