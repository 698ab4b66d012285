"""Controller CPU for a province's heartbeats: 10,000 nodes, one telemetry every 30 s.

A whole system on this machine (benchmarks/_harness.py): a provisioned fleet of
``--nodes`` nodes (registered in the controller's database, each with its broker
account), the project-local mosquitto with TLS and the dynamic-security ACL, and the real
controller (``loaxa controller serve``, SQLite). The heartbeats are not sent by 10,000
agents (two cores cannot run them and the controller at once): ``--publishers`` worker
processes send every node's telemetry on that node's own topic, each node once per
``--interval`` seconds, spread evenly over the interval, through a benchmark account
allowed to publish on the telemetry topics only. What the controller receives is what
10,000 nodes would send it: one valid ``Telemetry`` per node and interval, QoS 0.

After one whole interval to warm up (every node heard once), the controller's CPU
(user + system, its whole process tree, from /proc) is read over ``--measure`` seconds.
The anchor in the same run is the broker, which handles the same messages.

Usage: ``python benchmarks/heartbeats.py [--nodes 10000] [--interval 30] [--measure 90]
[--publishers 2]``. The last line is a JSON object: ``nodes``, ``interval_s``,
``measure_s``, ``messages_per_s`` (sent), ``cpu_share`` (controller CPU seconds per
second: the target is at most 0.20), ``broker_cpu_share``, ``nodes_heard`` (nodes whose
telemetry the controller stored during the measurement, from its API).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _harness import (
    REPO,
    SIM_COMMUNE,
    console,
    process_tree_cpu_s,
    running_system,
)

from firmware_config.broker import AclEntry, AclType, BrokerAccount, account_commands
from firmware_config.provision import ProvisionedFleet, control
from mqtt_contract import TELEMETRY, ClockState, Telemetry, connect_properties

LOAD_USER = "bench-heartbeats"
TARGET_CPU_SHARE = 0.20


def load_account(worker: int, password: str) -> BrokerAccount:
    """The publishers' account: telemetry topics of any node, nothing else."""
    return BrokerAccount(f"{LOAD_USER}-{worker}", f"{LOAD_USER}-{worker}", password,
                         (AclEntry(AclType.publish_send, TELEMETRY.filter()),),
                         role=LOAD_USER)


def heartbeat(node: str, started: float, plan_version: int) -> bytes:
    return Telemetry(node=node, uptime_s=time.time() - started, disk_free_mb=5200.0,
                     temperature_c=48.5, volume=80, plan_version=plan_version,
                     clock=ClockState(synced=True, offset_ms=0.8, source="chrony"),
                     cache_items=12).to_bytes()


def publisher(fleet: ProvisionedFleet, worker: int, password: str,
              nodes: list[tuple[str, str]], offsets: list[float], interval: float,
              until: float, sent: Any) -> None:
    """Send each node's heartbeat at its offset in every interval until ``until``."""
    client = fleet.mqtt_client(f"{LOAD_USER}-{worker}", password, f"{LOAD_USER}-{worker}")
    client.connect("127.0.0.1", fleet.broker_port, keepalive=30, clean_start=True,
                   properties=connect_properties(persistent=False))
    client.loop_start()
    started, count, cycle0 = time.time(), 0, time.monotonic()
    topics = [TELEMETRY.topic(commune, node=node) for commune, node in nodes]
    k, n = 0, len(nodes)
    while True:
        due = cycle0 + (k // n) * interval + offsets[k % n]
        if due >= until:
            break
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        i = k % n
        client.publish(topics[i], heartbeat(nodes[i][1], started, 1), qos=TELEMETRY.qos)
        count += 1
        k += 1
    client.disconnect()
    client.loop_stop()
    with sent.get_lock():
        sent.value += count


def broker_pid(conf: Path) -> int:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(part.endswith(b"mosquitto") for part in cmd[:1]) and str(conf).encode() in cmd:
                return int(proc.name)
    raise RuntimeError("the benchmark's broker is not running")


def nodes_heard(api: Any, since: datetime) -> int:
    heard = 0
    for node in api.call("GET", "/api/nodes"):
        seen = (node.get("telemetry") or {}).get("at")
        if seen and datetime.fromisoformat(seen.replace("Z", "+00:00")) >= since:
            heard += 1
    return heard


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--interval", type=float, default=30.0)
    ap.add_argument("--measure", type=float, default=90.0)
    ap.add_argument("--publishers", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="loaxa-heartbeats-", dir=REPO / ".run"
                                     if (REPO / ".run").is_dir() else None) as tmp, \
            running_system(args.workdir or Path(tmp), args.nodes, per_zone=20) as system:
        fleet = system.fleet
        password = "bench-" + fleet.controller_client_id  # the account lives for this run
        control(fleet, _commands(args.publishers, password))
        nodes = [(SIM_COMMUNE, node) for node in sorted(fleet.node_configs)]
        warm, total = args.interval, args.interval + args.measure
        start = time.monotonic() + 2.0
        sent = multiprocessing.Value("q", 0)
        workers = []
        for w in range(args.publishers):
            mine = nodes[w::args.publishers]
            offsets = [(i * args.publishers + w) / len(nodes) * args.interval
                       for i in range(len(mine))]
            p = multiprocessing.Process(target=publisher, args=(
                fleet, w, password, mine, [start - time.monotonic() + o for o in offsets],
                args.interval, start + total, sent), daemon=True)
            p.start()
            workers.append(p)
        controller, broker = system.procs[0].pid, broker_pid(fleet.broker_conf)
        console.log(f"{len(nodes)} nodes heartbeating every {args.interval:.0f} s; "
                    f"warming up {warm:.0f} s")
        time.sleep(max(0.0, start + warm - time.monotonic()))
        since = datetime.now(UTC)
        c0, b0, t0 = process_tree_cpu_s(controller), process_tree_cpu_s(broker), time.monotonic()
        console.log(f"measuring {args.measure:.0f} s")
        time.sleep(args.measure)
        c1, b1, t1 = process_tree_cpu_s(controller), process_tree_cpu_s(broker), time.monotonic()
        for p in workers:
            p.join(timeout=args.interval + 30)
        time.sleep(2.0)  # the ingest writer's last batch
        heard = nodes_heard(system.api, since)
    wall = t1 - t0
    result = {"nodes": len(nodes), "interval_s": args.interval, "measure_s": round(wall, 1),
              "messages_per_s": round(sent.value / total, 1),
              "cpu_share": round((c1 - c0) / wall, 4),
              "broker_cpu_share": round((b1 - b0) / wall, 4), "nodes_heard": heard,
              "target_cpu_share": TARGET_CPU_SHARE}
    console.log(f"controller {result['cpu_share']:.3f} of a core, broker "
                f"{result['broker_cpu_share']:.3f}; {heard}/{len(nodes)} nodes heard")
    print(json.dumps(result))


def _commands(publishers: int, password: str) -> list[dict[str, Any]]:
    """One role for every publisher account, then the accounts."""
    first = account_commands(load_account(0, password))
    rest = [account_commands(load_account(w, password))[1] for w in range(1, publishers)]
    return [*first, *rest]


if __name__ == "__main__":
    main()
