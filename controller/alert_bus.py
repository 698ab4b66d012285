"""Alert events to every open desk of every controller replica, within a second.

An alert is stored by the one replica the MQTT shared subscription gave it to, and an
officer's desk may be open on any replica. On PostgreSQL the change itself says so: the
transaction that stores or changes an alert also runs ``pg_notify`` (PostgreSQL delivers
it when, and only if, the transaction commits), and every replica keeps one connection
``LISTEN``-ing, reads the alert by id and pushes it to its own desks (``AlertHub``). On
SQLite there is one controller process: the event goes to its desks after the commit.
The desks still look in the database every few seconds (``controller/api/alerts.py``),
which covers a listener that was reconnecting, but that is the fallback, not the path.
"""

from __future__ import annotations

import json
import logging
import threading
from enum import StrEnum
from typing import Any

import psycopg
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.db import Database
from controller.models import CameraAlertRecord
from controller.services import alerts as alert_rules

log = logging.getLogger(__name__)
CHANNEL = "loaxa_alerts"
PENDING = "alert_events"
"""``session.info`` key: the SQLite path's events, handed to the hub after commit."""
RECONNECT_S = (0.5, 1.0, 2.0, 5.0)
"""The listener's waits between reconnections (the last one repeats)."""


class AlertEvent(StrEnum):
    """What the desks are told: a new alert, or a change of an alert's state."""

    alert = "alert"
    update = "update"


class AlertBus:
    def __init__(self, db: Database, hub: alert_rules.AlertHub) -> None:
        self.db, self.hub = db, hub
        self.across_replicas = db.engine.dialect.name == "postgresql"
        self.listening = threading.Event()
        """Set while the PostgreSQL listener's connection is up (health, tests)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        db.on_commit(self._deliver_committed)

    # the writing side --------------------------------------------------------------------
    def announce(self, session: Session, kind: AlertEvent, record: CameraAlertRecord) -> None:
        """Within the transaction that stored or changed ``record``: every desk hears of it
        once that transaction commits, and none if it rolls back."""
        if self.across_replicas:
            note = json.dumps({"kind": kind.value, "alert": record.alert_id})
            session.execute(select(func.pg_notify(CHANNEL, note)))
        else:
            session.flush()
            event = alert_rules.event_of(record, alert_rules.labels(session))
            session.info.setdefault(PENDING, []).append((kind, event))

    def _deliver_committed(self, session: Session) -> None:
        for kind, event in session.info.get(PENDING, ()):
            self.hub.publish(kind.value, event)

    # the listening side (PostgreSQL) -----------------------------------------------------
    def start(self) -> None:
        if self.across_replicas and self._thread is None:
            self._thread = threading.Thread(target=self._listen_forever, daemon=True,
                                            name="alert-listener")
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _conninfo(self) -> str:
        url = self.db.engine.url.set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    def _listen_forever(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo(), autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    failures = 0
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._on_note(note.payload)
            except psycopg.Error:
                log.warning("alert listener lost its database connection; reconnecting",
                            exc_info=True)
            finally:
                self.listening.clear()
            self._stop.wait(RECONNECT_S[min(failures, len(RECONNECT_S) - 1)])
            failures += 1

    def _on_note(self, payload: str) -> None:
        """One notification: read the alert as committed and push it to this replica's
        desks. A malformed or unknown one is logged and dropped."""
        try:
            note: dict[str, Any] = json.loads(payload)
            kind, alert_id = AlertEvent(note["kind"]), str(note["alert"])
        except (ValueError, KeyError, TypeError):
            log.warning("alert listener: malformed notification dropped")
            return
        try:
            with self.db.session() as s:
                record = alert_rules.get_alert(s, alert_id)
                event = alert_rules.event_of(record, alert_rules.labels(s)) if record else None
        except Exception:
            log.exception("alert listener: alert %s could not be read", alert_id)
            return
        if event is not None:
            self.hub.publish(kind.value, event)
