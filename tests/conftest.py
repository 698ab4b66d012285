"""Shared fixtures: a real project-local Mosquitto, the controller, real edge agents.

Every test that needs a broker gets its own mosquitto on a free port, configured by the
project's own provisioning (passwords, ACL), never the system broker on 1883.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firmware_config.broker import BrokerProcess, free_port, running_broker
from firmware_config.provision import FleetSettings, ProvisionedFleet, provision

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "firmware_config" / "examples"
ADMIN_PASSWORD = "admin-password-for-tests"
SHARED = Path(os.environ.get("LOAXA_SHARED_DIR", REPO.parent / "shared")).resolve()


POSTGRES_PASS = os.environ.get("LOAXA_TEST_DATABASE") == "postgres"
"""``make test``'s second pass: every controller in every test on PostgreSQL
(127.0.0.1:5432), each test in a database of its own cloned from one migrated template."""
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


@pytest.fixture(scope="session")
def _postgres_template() -> Iterator[str | None]:
    """The migrated template database of the PostgreSQL pass (None on the SQLite pass)."""
    if not POSTGRES_PASS:
        yield None
        return
    from sqlalchemy import create_engine, text

    from controller.db import migrate

    name = f"loaxa_template_{os.getpid()}"
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    migrate(f"{PG_SERVER}/{name}")
    try:
        yield name
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(autouse=True)
def _database_of_the_pass(request: pytest.FixtureRequest,
                          monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """On the PostgreSQL pass: ``LOAXA_DATABASE_URL`` names a fresh database for this
    test (a clone of the template: milliseconds, where migrating would take seconds), so
    every ``Settings`` of the test, and every controller process it starts, use it."""
    if not POSTGRES_PASS:
        yield
        return
    import uuid

    from sqlalchemy import create_engine, text

    template = request.getfixturevalue("_postgres_template")
    name = f"loaxa_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    monkeypatch.setenv("LOAXA_DATABASE_URL", f"{PG_SERVER}/{name}")
    try:
        yield
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def wait_for(predicate: Callable[[], object], timeout: float, step: float = 0.1,
             what: str = "condition") -> object:
    """Poll until ``predicate()`` is truthy; fail the test with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(step)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Iterator[Path]:
    """Where a test's fleet lives. As root the broker drops to an unprivileged user, which
    cannot pass pytest's 0700 temporary folders: then a folder of its own under /tmp."""
    if os.geteuid() != 0:
        yield tmp_path / "fleet"
        return
    base = Path(tempfile.mkdtemp(prefix="loaxa-test-"))
    base.chmod(0o711)
    try:
        yield base / "fleet"
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def fleet(fleet_dir: Path) -> ProvisionedFleet:
    """The example fleet, TLS on its only listener; two controller accounts (the second
    for tests that watch the broker beside a running controller)."""
    return provision(EXAMPLES, fleet_dir, settings=FleetSettings(free_port(),
                                                                 controller_replicas=2))


@pytest.fixture
def broker_process(fleet: ProvisionedFleet, tmp_path: Path) -> Iterator[BrokerProcess]:
    """The test's own mosquitto; tests may stop and start it to cut every link."""
    with running_broker(fleet.broker_conf, fleet.broker_port,
                        tmp_path / "mosquitto.log") as process:
        yield process


@pytest.fixture
def broker_process_for(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run the broker of a fleet the test provisioned itself (a context manager)."""
    return lambda fleet: running_broker(fleet.broker_conf, fleet.broker_port,
                                        tmp_path / "mosquitto-own.log")


@pytest.fixture
def broker(fleet: ProvisionedFleet, broker_process: BrokerProcess) -> ProvisionedFleet:
    return fleet


@pytest.fixture
def controller_settings(broker: ProvisionedFleet, tmp_path: Path):  # type: ignore[no-untyped-def]
    from controller.settings import Settings

    return Settings(data_dir=tmp_path / "controller", mqtt_port=broker.broker_port,
                    mqtt_username=broker.controller_user,
                    mqtt_password_file=broker.controller_password_file,
                    mqtt_ca_file=broker.controller_tls.ca,
                    mqtt_cert_file=broker.controller_tls.cert,
                    mqtt_key_file=broker.controller_tls.key,
                    fleet_dir=broker.root / "nodes", start_lead_s=6,
                    signing_key_dir=broker.signing_dir,
                    admin_password=ADMIN_PASSWORD)


@pytest.fixture
def controller(controller_settings):  # type: ignore[no-untyped-def]
    """A TestClient around the real app: real runtime, real MQTT link, real SQLite."""
    from fastapi.testclient import TestClient

    from controller.app import create_app

    with TestClient(create_app(controller_settings)) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        assert runtime.link.wait_connected(10), "controller did not reach the broker"
        client.runtime = runtime  # type: ignore[attr-defined]
        client.headers["Authorization"] = f"Bearer {login(client, 'admin', ADMIN_PASSWORD)}"
        yield client


def login(client, username: str, password: str) -> str:  # type: ignore[no-untyped-def]
    r = client.post("/api/auth/token", data={"username": username, "password": password},
                    headers={"Authorization": ""})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def make_user(client, username: str, role: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Create an account through the admin API; return headers carrying its token."""
    password = f"{username}-password-123"
    r = client.post("/api/users", json={"username": username, "password": password,
                                        "role": role})
    assert r.status_code in (201, 409), r.text
    return {"Authorization": f"Bearer {login(client, username, password)}"}


@pytest.fixture
def start_node(broker: ProvisionedFleet):  # type: ignore[no-untyped-def]
    """Start a real EdgeAgent for one of the example nodes; stopped after the test."""
    from edge.agent import EdgeAgent
    from firmware_config.schema import load_node_config

    agents: list[EdgeAgent] = []

    def start(node_id: str, *, from_file: bool = False, **overrides: object) -> EdgeAgent:
        """``from_file``: the agent runs its config file as it is and knows its path (a
        config push rewrites it); otherwise ``overrides`` change the loaded config."""
        path = broker.node_configs[node_id]
        cfg = load_node_config(path)
        if not from_file:
            cfg = cfg.model_copy(update={"media_wait_s": 1.0, **overrides})
        agent = EdgeAgent(cfg, config_path=path if from_file else None)
        agent.start()
        assert agent.connected.wait(10), f"{node_id} did not connect"
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        if not agent._stop.is_set():
            agent.stop()


@pytest.fixture(autouse=True)
def _quiet_libraries() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
