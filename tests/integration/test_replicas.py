"""Two controller processes against one PostgreSQL and one broker (issue 13 item 3).

Each replica is a real ``loaxa controller serve`` process with its own broker account,
sharing the database, the media store and the signing key. What must hold:
an alert is stored once and reaches the officers' desks open on both replicas within a
second (PostgreSQL LISTEN/NOTIFY); the plan-compiler lease moves to the survivor within
10 s of the leader's SIGKILL, and a change the dead leader committed but never published
reaches the node anyway.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from controller.db import Database
from controller.models import CameraAlertRecord, Lease, PlaybackLog, Schedule
from controller.services.leadership import PLAN_COMPILER
from firmware_config.provision import ProvisionedFleet
from tests.conftest import ADMIN_PASSWORD, REPO, free_port, wait_for
from tests.test_database import postgres_url
from tests.web.test_alert_desk import NodeLink

pytestmark = pytest.mark.postgres
DESK_LIMIT_S = 1.0
TAKEOVER_LIMIT_S = 10.0


@dataclass
class Replica:
    """``loaxa controller serve`` as replica ``n`` of the deployment."""

    n: int
    env: dict[str, str]
    port: int
    log: Path
    proc: subprocess.Popen | None = None
    token: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "loaxa_cli", "controller", "serve", "--port",
                 str(self.port), "--log-level", "info"], stdout=out,
                stderr=subprocess.STDOUT, env=self.env, cwd=REPO)
        wait_for(self.health, 60, what=f"replica {self.n} up, its broker link connected")
        r = httpx.post(f"{self.url}/api/auth/token",
                       data={"username": "admin", "password": ADMIN_PASSWORD})
        assert r.status_code == 200, r.text
        self.token = r.json()["access_token"]

    def health(self) -> dict | None:
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail(f"replica {self.n} exited: {self.log.read_text()[-3000:]}")
        try:
            body = httpx.get(f"{self.url}/healthz", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return None
        return body if body.get("status") == "ok" else None

    def api(self, method: str, path: str, **kw: object) -> httpx.Response:
        return httpx.request(method, self.url + path, timeout=30,
                             headers={"Authorization": f"Bearer {self.token}"}, **kw)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Desk:
    """An officer's open alert stream on one replica: when each alert arrived."""

    replica: Replica
    seen: dict[str, float] = field(default_factory=dict)
    connected: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()
        assert self.connected.wait(15), f"desk on replica {self.replica.n} did not open"

    def _read(self) -> None:
        headers = {"Authorization": f"Bearer {self.replica.token}"}
        with httpx.stream("GET", f"{self.replica.url}/api/alerts/stream", headers=headers,
                          params={"max_s": 120}, timeout=None) as r:
            event = None
            for line in r.iter_lines():
                self.connected.set()
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "alert":
                    self.seen.setdefault(json.loads(line[6:])["alert_id"], time.monotonic())


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from postgres_url()


@pytest.fixture
def replicas(broker: ProvisionedFleet, pg_url: str, tmp_path: Path) -> Iterator[list[Replica]]:
    """Two replicas: one database, one data folder (media store, keys), one broker."""
    tls = broker.controller_tls
    assert tls is not None
    base = {**os.environ, "PYTHONPATH": str(REPO), "LOAXA_DATABASE_URL": pg_url,
            "LOAXA_DATA_DIR": str(tmp_path / "controller"),
            "LOAXA_MQTT_PORT": str(broker.broker_port), "LOAXA_MQTT_CA_FILE": str(tls.ca),
            "LOAXA_MQTT_CERT_FILE": str(tls.cert), "LOAXA_MQTT_KEY_FILE": str(tls.key),
            "LOAXA_FLEET_DIR": str(broker.root / "nodes"), "LOAXA_START_LEAD_S": "6",
            "LOAXA_SIGNING_KEY_DIR": str(broker.signing_dir),
            "LOAXA_ADMIN_PASSWORD": ADMIN_PASSWORD}
    made = []
    for n in (1, 2):
        user, client_id, password = broker.controller_account(n)
        env = base | {"LOAXA_MQTT_USERNAME": user, "LOAXA_MQTT_CLIENT_ID": client_id,
                      "LOAXA_MQTT_PASSWORD": password}
        made.append(Replica(n, env, free_port(), tmp_path / f"replica-{n}.log"))
    try:
        for replica in made:  # one after the other: the first takes the lease
            replica.start()
        yield made
    finally:
        for replica in made:
            replica.stop()


def lease_holder(db: Database) -> str | None:
    with db.session() as s:
        lease = s.get(Lease, PLAN_COMPILER)
        return lease.holder if lease and lease.expires_at > datetime.now(UTC) else None


def test_an_alert_is_stored_once_and_reaches_the_desks_on_both_replicas_within_a_second(
        replicas: list[Replica], broker: ProvisionedFleet, pg_url: str) -> None:
    desks = [Desk(r) for r in replicas]
    node = NodeLink(broker, "node-1")
    sent: dict[str, float] = {}
    try:
        for i in range(8):  # the shared subscription gives each to one replica
            at = time.monotonic()
            sent[node.alert("cam-1", "no_helmet", seed=i).id] = at
            time.sleep(0.3)
        wait_for(lambda: all(set(sent) <= set(d.seen) for d in desks), 10,
                 what="every alert on both desks")
    finally:
        node.close()
    delays = {(d.replica.n, a): d.seen[a] - at for d in desks for a, at in sent.items()}
    late = {k: round(v, 2) for k, v in delays.items() if v > DESK_LIMIT_S}
    assert not late, f"alerts later than {DESK_LIMIT_S} s on a desk: {late}"
    db = Database(pg_url)
    try:
        with db.session() as s:
            stored = list(s.scalars(select(CameraAlertRecord.alert_id)))
    finally:
        db.dispose()
    assert sorted(stored) == sorted(sent), "each alert stored exactly once"
    ingested_by = [sum(f"alert {a} from" in r.log.read_text() for a in sent) for r in replicas]
    assert sum(ingested_by) == len(sent), ingested_by


def test_the_survivor_takes_the_lease_within_ten_seconds_and_loses_no_plan_nor_report(
        replicas: list[Replica], start_node, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    first, second = replicas
    assert first.health()["plan_leader"] and not second.health()["plan_leader"]
    agent = start_node("node-1")
    start_at = datetime.now(UTC) + timedelta(minutes=30)
    r = first.api("POST", "/api/announcements", json={
        "text": "Thông báo lịch tiêm phòng.", "start_at": start_at.isoformat(),
        "nodes": ["node-1"]})
    assert r.status_code == 201, r.text
    wait_for(lambda: agent.plans.current and agent.plans.current.items, 20,
             what="the leader's plan on the node")
    # What a leader leaves behind when it dies between a commit and its plans: the
    # change is in the database, its plans never went out.
    db = Database(pg_url)
    moved_to = datetime.now(UTC) + timedelta(seconds=25)
    try:
        with db.session() as s:
            schedule = s.scalars(select(Schedule)).one()
            schedule.start_at = moved_to
        killed_at = time.monotonic()
        first.kill()
        wait_for(lambda: lease_holder(db) == second.env["LOAXA_MQTT_CLIENT_ID"],
                 TAKEOVER_LIMIT_S + 5, what="the survivor holding the lease")
        took_s = time.monotonic() - killed_at

        def moved() -> bool:
            items = agent.plans.current.items if agent.plans.current else []
            return any(abs((i.start_at - moved_to).total_seconds()) < 1 for i in items)

        wait_for(moved, TAKEOVER_LIMIT_S + 5, what="the committed change on the node")
        replanned_s = time.monotonic() - killed_at
        assert took_s <= TAKEOVER_LIMIT_S, f"lease taken over after {took_s:.1f} s"
        assert replanned_s <= TAKEOVER_LIMIT_S, f"plan on the node {replanned_s:.1f} s after"
        assert second.health()["plan_leader"]
        sink = agent.config.audio.file_dir
        wait_for(lambda: any(sink.glob("*.wav")), 60, what="the moved item played")
        # The broker keeps the dead replica's session and its share of the reports (a
        # shared subscription serves sessions, connected or not): its supervisor
        # restarts it, and what it held is stored then, once (docs/deploy.md).
        first.start()
        wait_for(lambda: _events(db, "node-1") >= {"started", "finished"}, 30,
                 what="the moved item's reports stored")
        with db.session() as s:
            rows = list(s.scalars(select(PlaybackLog.event).where(
                PlaybackLog.node_id == "node-1")))
        assert sorted(rows) == ["finished", "started"], rows
    finally:
        db.dispose()


def _events(db: Database, node: str) -> set[str]:
    with db.session() as s:
        return set(s.scalars(select(PlaybackLog.event).where(PlaybackLog.node_id == node)))
