"""Which commune's records a database session may see and change: the one owner of the
commune rule for accounts.

A province deployment serves many communes. An account belongs to one commune (its
staff, leaders and officers) or to the province (``User.commune`` None: province staff
and every administrator). A request's session carries its account's commune
(``Database.session(commune=…)``, set by ``controller/api/deps.py`` for every route), and
here that becomes row-level rules no route can forget:

- **reading**: every ORM query of a commune-owned model (nodes, zones, groups,
  announcements, schedules, lexicon, alerts, the broadcast log, live sessions, relay
  slots) is given ``WHERE commune = :commune`` (SQLAlchemy ``with_loader_criteria``,
  through the ``do_orm_execute`` event: lists, lookups by id, relationships, bulk
  updates and deletes alike). Holidays and radio stations may also be the province's
  (``commune`` NULL), which every commune sees and uses;
- **writing**: a row a commune session adds is stamped with its commune, and one that
  names another commune is refused (``before_flush``), as is moving a row elsewhere;
- **reaching nodes**: targets (of a schedule, a command, a live session, a relay) from a
  commune session are bound to that commune (:func:`bind`), so ``all`` means "every node
  of my commune", never the province's.

Sessions opened without a commune (the MQTT ingest, the plan compiler, province
accounts) see everything. Who may do what within a commune stays with the roles
(``controller/security.py``, ``controller/api/deps.py``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, or_
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from controller.domain import DomainError, Targets
from controller.models import (
    Announcement,
    CalendarException,
    CameraAlertRecord,
    LexiconEntry,
    LiveBroadcast,
    Node,
    NodeGroup,
    PlaybackLog,
    RelaySlot,
    Schedule,
    StreamSource,
    Upload,
    Zone,
)

OWN = (Node, Zone, NodeGroup, Announcement, Schedule, LexiconEntry,
       CameraAlertRecord, PlaybackLog, LiveBroadcast, RelaySlot)
"""Each row belongs to one commune (or, for what a province account made, to the
province: NULL), and only that commune's sessions see it."""
SHARED = (CalendarException, StreamSource, Upload)
"""Rows of one commune, or of the province (NULL) that every commune sees and uses:
national holidays, the VOV and provincial stations, a province's recordings."""
TARGETED = (Schedule, RelaySlot, LiveBroadcast)
COMMUNE_KEY = "loaxa.commune"
"""``Session.info`` key of the session's commune (absent: the province)."""


class CommuneRefused(DomainError):
    """A commune account reached for another commune's records or nodes."""

    code = "other_commune"


def commune_of(session: Session) -> str | None:
    """The commune ``session`` is limited to; None for the province (everything)."""
    return session.info.get(COMMUNE_KEY)


def limit(session: Session, commune: str | None) -> None:
    """Limit ``session`` to ``commune`` (None: the province) until its transaction ends."""
    if commune is None:
        session.info.pop(COMMUNE_KEY, None)
    else:
        session.info[COMMUNE_KEY] = commune


def bind(session: Session, targets: Targets) -> Targets:
    """``targets`` as this session may reach them: a commune session's are within its
    commune (naming another is refused); a province session's are as given."""
    return within(commune_of(session), targets)


def within(commune: str | None, targets: Targets) -> Targets:
    """``targets`` bound to ``commune`` (None: the province, as given)."""
    if commune is None:
        return targets
    if targets.communes and set(targets.communes) != {commune}:
        raise CommuneRefused(f"targets name communes {targets.communes} from {commune}",
                             "Tài khoản của xã chỉ phát được tới cụm loa của xã mình.")
    if targets.communes == [commune]:
        return targets
    return targets.model_copy(update={"communes": [commune]})


@event.listens_for(Session, "do_orm_execute")
def _only_the_sessions_commune(state: ORMExecuteState) -> None:
    commune = commune_of(state.session)
    if commune is None or not (state.is_select or state.is_update or state.is_delete):
        return
    own = [with_loader_criteria(m, lambda cls: cls.commune == commune, include_aliases=True)
           for m in OWN]
    shared = [with_loader_criteria(
        m, lambda cls: or_(cls.commune == commune, cls.commune.is_(None)),
        include_aliases=True) for m in SHARED]
    state.statement = state.statement.options(*own, *shared)


@event.listens_for(Session, "before_flush")
def _stamp_and_check(session: Session, _context: Any, _instances: Any) -> None:
    commune = commune_of(session)
    if commune is None:
        return
    for obj in session.new:
        if isinstance(obj, OWN + SHARED):
            if obj.commune is None:
                obj.commune = commune
            elif obj.commune != commune:
                raise CommuneRefused(f"a {type(obj).__name__} of {obj.commune} from {commune}",
                                     "Tài khoản của xã chỉ thay đổi được dữ liệu của xã mình.")
        if isinstance(obj, TARGETED):
            obj.targets = bind(session, obj.targets)
    for obj in session.deleted:
        if isinstance(obj, OWN + SHARED) and obj.commune != commune:
            raise CommuneRefused(f"a {type(obj).__name__} of {obj.commune} deleted",
                                 "Tài khoản của xã chỉ thay đổi được dữ liệu của xã mình.")
    for obj in session.dirty:
        if isinstance(obj, OWN + SHARED) and obj.commune != commune:
            raise CommuneRefused(f"a {type(obj).__name__} moved to {obj.commune}",
                                 "Tài khoản của xã chỉ thay đổi được dữ liệu của xã mình.")
        if isinstance(obj, TARGETED):
            obj.targets = bind(session, obj.targets)
