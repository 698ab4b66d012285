"""The communes of a deployment (issue: a province on one deployment).

Communes are rows (code, name, time zone): the code is the MQTT topic segment that every
node, zone and record of the commune carries. A commune comes into being when an
administrator declares it, when a node of it is registered from its config, or when the
controller starts with it as its default; which accounts see which commune is
``controller/scope.py``'s.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.models import Commune
from controller.services import audit
from mqtt_contract import DEFAULT_TIMEZONE


def ensure_commune(session: Session, code: str, timezone: str = DEFAULT_TIMEZONE) -> Commune:
    """The commune ``code``, made with its code as its name when it is new."""
    commune = session.get(Commune, code)
    if commune is None:
        commune = Commune(code=code, name=code, timezone=timezone)
        session.add(commune)
        session.flush()
    return commune


def list_communes(session: Session, only: str | None = None) -> list[Commune]:
    """Every commune, or only ``only`` (a commune account's own)."""
    query = select(Commune).order_by(Commune.code)
    if only is not None:
        query = query.where(Commune.code == only)
    return list(session.scalars(query))


def put_commune(session: Session, code: str, name: str, timezone: str, actor: str) -> Commune:
    """Declare a commune or rename it / change its clock; audited."""
    commune = session.get(Commune, code)
    if commune is None:
        commune = Commune(code=code)
        session.add(commune)
    commune.name, commune.timezone = name, timezone
    audit.record(session, actor, "put_commune", "commune", code, name=name, timezone=timezone)
    session.flush()
    return commune
