"""Alert ingest with snapshots across two controller replicas, without loss.

On this machine: the project-local mosquitto (TLS, dynamic-security ACL), PostgreSQL
(127.0.0.1:5432, a database of the run's own) and two real controllers (``loaxa
controller serve``), each with its own broker account, sharing the database and the
media store, as docs/deploy.md runs them. ``--publishers`` processes send ``--alerts``
camera alerts from the fleet's nodes (each on its node's own topic, QoS 1 as a node's
outbox sends them, through a benchmark account allowed to publish alerts only), each
with its own JPEG snapshot of about 20 KB, as fast as the broker takes them. The
replicas split them (MQTT 5 shared subscription) and store each once.

``alerts_per_s`` is what was stored per second, from the first alert sent to the last
one stored; ``sent`` and ``stored`` (rows in the database, each alert id once) show
that nothing was lost; ``by_replica`` how the shared subscription split the work.

Usage: ``python benchmarks/alerts.py [--alerts 3000] [--publishers 2] [--nodes 100]``.
The last line is a JSON object with those keys.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from _harness import REPO, _spawn, _stop_group, console, progress
from sqlalchemy import Engine, create_engine, text

from firmware_config.broker import (
    AclEntry,
    AclType,
    BrokerAccount,
    account_commands,
    free_port,
    running_broker,
    wait_for_port,
)
from firmware_config.fleet_gen import write_synthetic_templates
from firmware_config.provision import FleetSettings, ProvisionedFleet, control, provision
from mqtt_contract import ALERT, Alert, connect_properties

PG = "postgresql+psycopg://postgres@127.0.0.1:5432"
COMMUNE = "xa-sim"
LOAD_USER = "bench-alerts"
SNAPSHOTS = 64
"""Distinct snapshots per publisher (each alert's differs by its id in a JPEG comment)."""


def snapshots(seed: int) -> list[bytes]:
    """Street-like noise pictures, 320×240 JPEG (about 20 KB each)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(SNAPSHOTS):
        base = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (5, 5), 0)
        ok, jpeg = cv2.imencode(".jpg", base, [cv2.IMWRITE_JPEG_QUALITY, 80])
        assert ok
        out.append(jpeg.tobytes())
    return out


def unique(jpeg: bytes, tag: str) -> bytes:
    """The picture with ``tag`` in a COM segment right after SOI: still a valid JPEG,
    and a file of its own in the media store."""
    payload = tag.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def publisher(fleet: ProvisionedFleet, worker: int, password: str, nodes: list[str],
              count: int, sent_ids: Any, done: Any) -> None:
    client = fleet.mqtt_client(f"{LOAD_USER}-{worker}", password, f"{LOAD_USER}-{worker}")
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", fleet.broker_port, keepalive=30, clean_start=True,
                   properties=connect_properties(persistent=False))
    client.loop_start()
    pictures = snapshots(worker)
    infos = []
    for i in range(count):
        node = nodes[i % len(nodes)]
        alert_id = uuid.uuid4().hex
        jpeg = unique(pictures[i % SNAPSHOTS], alert_id)
        alert = Alert(id=alert_id, node=node, camera="cam-1", kind="no_helmet",
                      at=datetime.now(UTC), confidence=0.9,
                      snapshot_jpeg_b64=base64.b64encode(jpeg).decode())
        infos.append(client.publish(ALERT.topic(COMMUNE, node=node), alert.to_bytes(), qos=1))
        sent_ids.put(alert_id)
    for info in infos:
        info.wait_for_publish(timeout=120)
    client.disconnect()
    client.loop_stop()
    done.put(sum(1 for info in infos if info.is_published()))


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(DISTINCT alert_id) FROM alerts")).scalar_one()


@contextlib.contextmanager
def database() -> Any:
    name = f"loaxa_bench_alerts_{os.getpid()}"
    admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG}/{name}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=3000)
    ap.add_argument("--publishers", type=int, default=2)
    ap.add_argument("--nodes", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="loaxa-alerts-") as tmp, database() as url:
        work = Path(tmp)
        if os.geteuid() == 0:
            work.chmod(0o711)
        templates = write_synthetic_templates(work / "templates", args.nodes, per_zone=20)
        fleet = provision(templates, work, settings=FleetSettings(free_port(),
                                                                   controller_replicas=2))
        logs = work / "logs"
        logs.mkdir()
        with running_broker(fleet.broker_conf, fleet.broker_port, logs / "mosquitto.log"):
            password = uuid.uuid4().hex
            role = [AclEntry(AclType.publish_send, ALERT.filter())]
            commands = []
            for w in range(args.publishers):
                made = account_commands(BrokerAccount(
                    f"{LOAD_USER}-{w}", f"{LOAD_USER}-{w}", password, tuple(role),
                    role=LOAD_USER))
                commands += made if w == 0 else made[1:]
            control(fleet, commands)
            procs, ports = [], []
            try:
                for n in (1, 2):
                    user, client_id, replica_password = fleet.controller_account(n)
                    port = free_port()
                    env = {**os.environ, "PYTHONPATH": str(REPO), "LOAXA_DATABASE_URL": url,
                           "LOAXA_DATA_DIR": str(work / "controller"),
                           "LOAXA_MQTT_PORT": str(fleet.broker_port),
                           "LOAXA_MQTT_USERNAME": user, "LOAXA_MQTT_CLIENT_ID": client_id,
                           "LOAXA_MQTT_PASSWORD": replica_password,
                           "LOAXA_MQTT_CA_FILE": str(fleet.controller_tls.ca),
                           "LOAXA_MQTT_CERT_FILE": str(fleet.controller_tls.cert),
                           "LOAXA_MQTT_KEY_FILE": str(fleet.controller_tls.key),
                           "LOAXA_FLEET_DIR": str(work / "nodes"),
                           "LOAXA_SIGNING_KEY_DIR": str(fleet.signing_dir),
                           "LOAXA_ADMIN_PASSWORD": uuid.uuid4().hex}
                    procs.append(_spawn([sys.executable, "-m", "loaxa_cli", "controller",
                                         "serve", "--port", str(port), "--log-level",
                                         "info"], env, logs / f"controller-{n}.log"))
                    ports.append(port)
                    wait_for_port("127.0.0.1", port, timeout=120)
                time.sleep(3.0)  # both links up and subscribed
                result = run(fleet, args, password, url)
                result["by_replica"] = [
                    (logs / f"controller-{n}.log").read_text().count("controller.runtime: alert ")
                    for n in (1, 2)]
            finally:
                for proc in procs:
                    _stop_group(proc)
    console.log(f"{result['stored']}/{result['sent']} alerts stored, "
                f"{result['alerts_per_s']:.0f}/s; split {result['by_replica']}")
    print(json.dumps(result))


def run(fleet: ProvisionedFleet, args: argparse.Namespace, password: str,
        url: str) -> dict[str, Any]:
    nodes = sorted(fleet.node_configs)
    sent_ids, done = multiprocessing.Queue(), multiprocessing.Queue()
    per = [args.alerts // args.publishers + (w < args.alerts % args.publishers)
           for w in range(args.publishers)]
    t0 = time.monotonic()
    workers = [multiprocessing.Process(target=publisher, args=(
        fleet, w, password, nodes[w::args.publishers], per[w], sent_ids, done), daemon=True)
        for w in range(args.publishers)]
    for p in workers:
        p.start()
    acked = sum(done.get(timeout=600) for _ in workers)
    sent_s = time.monotonic() - t0
    last, last_change = -1, time.monotonic()
    engine = create_engine(url)  # one pool for the polls, not an engine each 0.2 s
    with progress() as bar:
        task = bar.add_task("stored", total=args.alerts)
        while True:
            count = stored(engine)
            bar.update(task, completed=count)
            if count != last:
                last, last_change = count, time.monotonic()
            if count >= args.alerts or time.monotonic() - last_change > 30:
                break
            time.sleep(0.2)
    engine.dispose()
    stored_s = last_change - t0
    for p in workers:
        p.join(timeout=10)
    return {"alerts": args.alerts, "sent": acked, "stored": last,
            "alerts_per_s": round(last / stored_s, 1), "sent_s": round(sent_s, 2),
            "stored_s": round(stored_s, 2), "publishers": args.publishers,
            "snapshot_kb": round(len(snapshots(0)[0]) / 1024, 1)}


if __name__ == "__main__":
    main()
