"""Shared set-up for the delivery benchmarks: a whole loaxa system on this machine.

``System`` provisions a synthetic fleet, runs the project-local mosquitto, the controller
(``loaxa controller serve``) and the simulated nodes (``loaxa simulate --processes P``),
each child in its own process group, and stops all of them on the way out, whatever
happened. ``Watcher`` listens with the controller's broker account to every node's status
and playback reports, so the benchmarks measure what the nodes themselves report
(``actual_at``: the nodes share this machine's clock) without going through the
controller's database.

Nothing is mocked but the sound card: the nodes are real agents with WAV file sinks.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from firmware_config.broker import (  # noqa: E402
    apply_tls,
    free_port,
    running_broker,
    wait_for_port,
)
from firmware_config.fleet_gen import write_synthetic_templates  # noqa: E402
from firmware_config.provision import (  # noqa: E402
    FleetSettings,
    ProvisionedFleet,
    ensure_password,
    provision,
)
from mqtt_contract import ALL_CMD, connect_properties, new_client  # noqa: E402

WATCHER_REPLICA, RAW_PUBLISHER_REPLICA = 2, 3
"""The benchmark's own broker accounts: controller replicas 2 and 3 (read everything the
controller reads, publish where it publishes), each bound to its own client id."""

console = Console(stderr=True)
SIM_COMMUNE = "xa-sim"
"""The commune of the synthetic fleets (firmware_config.fleet_gen)."""


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0–100): the value below which q % of samples lie."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True)


# --------------------------------------------------------------------------------------
@dataclass
class Watcher:
    """The benchmark's own MQTT client (controller account, its own client id)."""

    fleet: ProvisionedFleet
    online: set[str] = field(default_factory=set)
    started: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    """item id → node → ``actual_at`` (epoch seconds) of its ``started`` report."""
    received: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    """item id → node → when this watcher received the ``started`` report."""
    events: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    """item id → node → the newest event reported."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    client: Any = None

    def start(self) -> None:
        user, client_id, password = self.fleet.controller_account(WATCHER_REPLICA)
        self.client = self.fleet.mqtt_client(user, password, client_id)
        connected = threading.Event()

        def on_connect(client: Any, *_: Any) -> None:
            client.subscribe([("loaxa/v1/+/node/+/status", 1), ("loaxa/v1/+/node/+/playback", 1)])
            connected.set()

        self.client.on_connect = on_connect
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", self.fleet.broker_port, keepalive=30, clean_start=True,
                            properties=connect_properties(persistent=False))
        self.client.loop_start()
        if not connected.wait(10):
            raise RuntimeError("the benchmark's watcher could not reach the broker")

    def stop(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        now = time.time()
        node = msg.topic.split("/")[4]
        body = json.loads(msg.payload)
        with self.lock:
            if msg.topic.endswith("/status"):
                (self.online.add if body.get("online") else self.online.discard)(node)
                return
            item = body["item_id"]
            self.events[item][node] = body["event"]
            if body["event"] == "started" and node not in self.started[item]:
                self.started[item][node] = datetime.fromisoformat(body["actual_at"]).timestamp()
                self.received[item][node] = now

    def wait_online(self, count: int, timeout: float) -> None:
        with progress() as bar:
            task = bar.add_task("nodes online", total=count)
            deadline = time.monotonic() + timeout
            while (n := len(self.online)) < count:
                bar.update(task, completed=n)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {n}/{count} nodes came online in {timeout:.0f} s")
                time.sleep(0.2)

    def wait_started(self, item: str, count: int, timeout: float, what: str) -> dict[str, float]:
        """Wait until ``count`` nodes reported ``started`` for ``item``; their actual_at."""
        with progress() as bar:
            task = bar.add_task(what, total=count)
            deadline = time.monotonic() + timeout
            while (n := len(self.started.get(item, {}))) < count:
                bar.update(task, completed=n)
                if time.monotonic() > deadline:
                    console.print(f"[red]{what}: only {n}/{count} nodes started in "
                                  f"{timeout:.0f} s")
                    break
                time.sleep(0.02)
        with self.lock:
            return dict(self.started.get(item, {}))


# --------------------------------------------------------------------------------------
class Api:
    """The controller's REST API over plain HTTP, as an operator's client would use it."""

    def __init__(self, base: str) -> None:
        self.base, self.token = base, ""

    def login(self, username: str, password: str) -> None:
        form = urllib.parse.urlencode({"username": username, "password": password}).encode()
        with urllib.request.urlopen(f"{self.base}/api/auth/token", data=form,
                                    timeout=30) as resp:
            self.token = json.loads(resp.read())["access_token"]

    def call(self, method: str, path: str, body: dict | None = None,
             timeout: float = 300) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.base}{path}", data=data, method=method, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None


# --------------------------------------------------------------------------------------
def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # own group: killpg reaches children


def _stop_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM the child's whole process group, then SIGKILL what is left."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers (the group outlives its leader)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


@dataclass
class System:
    fleet: ProvisionedFleet
    api: Api
    watcher: Watcher
    workdir: Path
    env: dict[str, str]
    procs: list[subprocess.Popen] = field(default_factory=list)

    def start_nodes(self, nodes: int, processes: int) -> None:
        exe = [sys.executable, "-m", "loaxa_cli"]
        self.procs.append(_spawn([*exe, "simulate", "--nodes", str(nodes), "--fleet",
                                  str(self.workdir), "--processes", str(processes),
                                  "--log-level", os.environ.get("LOAXA_BENCH_NODE_LOG", "warning")],
                                 self.env,
                                 self.workdir / "logs" / "nodes.log"))
        t0 = time.monotonic()
        self.watcher.wait_online(nodes, timeout=60 + nodes * 0.1)
        console.log(f"{nodes} nodes online after {time.monotonic() - t0:.1f} s")


@contextlib.contextmanager
def running_system(workdir: Path, nodes: int, per_zone: int,
                   extra_env: dict[str, str] | None = None, communes: int = 1
                   ) -> Iterator[System]:
    """Fleet (over ``communes`` communes), broker, controller and watcher; the caller
    starts the nodes (or not)."""
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:  # the broker drops to an unprivileged user: it must get through
        workdir.chmod(0o711)
    console.log(f"provisioning {nodes} nodes in {workdir}")
    templates = write_synthetic_templates(workdir / "templates", nodes, per_zone=per_zone,
                                          communes=communes)
    port = free_port()
    fleet = provision(templates, workdir, settings=FleetSettings(
        port, controller_replicas=RAW_PUBLISHER_REPLICA))
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    admin_password = ensure_password(workdir / "secrets", "web-admin").read_text().strip()
    http_port = free_port()
    env = {**os.environ, "LOAXA_DATA_DIR": str(workdir / "controller"),
           "LOAXA_MQTT_PORT": str(port), "LOAXA_MQTT_USERNAME": fleet.controller_user,
           "LOAXA_MQTT_PASSWORD_FILE": str(fleet.controller_password_file),
           "LOAXA_MQTT_CLIENT_ID": fleet.controller_client_id,
           "LOAXA_MQTT_CA_FILE": str(fleet.controller_tls.ca),
           "LOAXA_MQTT_CERT_FILE": str(fleet.controller_tls.cert),
           "LOAXA_MQTT_KEY_FILE": str(fleet.controller_tls.key),
           "LOAXA_FLEET_DIR": str(workdir / "nodes"), "LOAXA_PORT": str(http_port),
           "LOAXA_ADMIN_PASSWORD": admin_password,
           "PYTHONPATH": str(REPO), **(extra_env or {})}
    with running_broker(fleet.broker_conf, port, logs / "mosquitto.log"):
        system = System(fleet, Api(f"http://127.0.0.1:{http_port}"), Watcher(fleet), workdir,
                        env)
        try:
            level = os.environ.get("LOAXA_BENCH_CONTROLLER_LOG", "warning")
            system.procs.append(_spawn([sys.executable, "-m", "loaxa_cli", "controller",
                                        "serve", "--log-level", level], env,
                                       logs / "controller.log"))
            wait_for_port("127.0.0.1", http_port, timeout=120)
            system.api.login("admin", admin_password)
            system.watcher.start()
            console.log(f"broker :{port}, controller :{http_port}; logs in {logs}")
            yield system
        finally:
            system.watcher.stop()
            for proc in reversed(system.procs):
                _stop_group(proc)


# --------------------------------------------------------------------------------------
def _raw_worker(accounts: list[tuple[str, str, str, Any, str]], port: int,
                ready: Any, results: Any, stop: Any) -> None:
    """Bare paho subscribers (one per node account, threaded loop), each on its commune's
    command topic: what the broker alone costs, with the same accounts and ACL as the
    nodes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    latencies: list[tuple[int, float]] = []
    lock = threading.Lock()
    subscribed = threading.Semaphore(0)

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        now = time.time()
        seq, sent = msg.payload.decode().split(" ")
        with lock:
            latencies.append((int(seq), now - float(sent)))

    clients = []
    for user, client_id, password, tls, topic in accounts:
        c = new_client(client_id, user, password, persistent=False)
        apply_tls(c, tls)
        c.on_connect = lambda client, *_, topic=topic: client.subscribe(topic, qos=1)
        c.on_subscribe = lambda *_: subscribed.release()
        c.on_message = on_message
        c.connect_async("127.0.0.1", port, keepalive=60, clean_start=True,
                        properties=connect_properties(persistent=False))
        c.loop_start()
        clients.append(c)
    for _ in clients:
        subscribed.acquire(timeout=60)
    ready.put(len(clients))
    stop.wait()
    with lock:
        results.put(list(latencies))  # first: a client that fails to stop loses nothing
    for c in clients:
        c.disconnect()
        with contextlib.suppress(AttributeError):  # paho: its loop thread already gone
            c.loop_stop()


def node_accounts(fleet: ProvisionedFleet) -> list[tuple[str, str, str, Any, str]]:
    """(username, client id, password, TLS files, its commune's command topic) of every
    node, in node order: the raw subscribers log in exactly as the nodes do (TLS, their
    own bound client ids)."""
    from firmware_config.schema import load_node_config

    return [(node, fleet.node_client_id(node), fleet.node_password(node), fleet.node_tls(node),
             ALL_CMD.topic(load_node_config(fleet.node_configs[node]).commune))
            for node in sorted(fleet.node_configs)]


def raw_fanout(fleet: ProvisionedFleet, subscribers: int, processes: int, rounds: int,
               gap_s: float = 1.0) -> list[float]:
    """The bare broker: one QoS 1 publish on each commune's command topic reaching
    ``subscribers`` clients (the nodes' accounts, before the nodes start), ``rounds``
    times; returns each round's p99 latency (publish → on_message in the subscriber)."""
    ctx = multiprocessing.get_context("spawn")
    ready, results, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    accounts = node_accounts(fleet)[:subscribers]
    topics = sorted({a[4] for a in accounts})  # one publish per commune, as an emergency
    workers = [ctx.Process(target=_raw_worker, args=(
        accounts[i::processes], fleet.broker_port, ready, results, stop))
        for i in range(processes) if accounts[i::processes]]
    for w in workers:
        w.start()
    try:
        with progress() as bar:
            task = bar.add_task("raw subscribers", total=subscribers)
            for _ in workers:
                bar.advance(task, ready.get(timeout=120))
        user, client_id, password = fleet.controller_account(RAW_PUBLISHER_REPLICA)
        pub = fleet.mqtt_client(user, password, client_id)
        pub.connect("127.0.0.1", fleet.broker_port, clean_start=True,
                    properties=connect_properties(persistent=False))
        pub.loop_start()
        time.sleep(1.0)
        for seq in range(rounds):
            sent = f"{seq} {time.time():.6f}".encode()
            for info in [pub.publish(topic, sent, qos=1) for topic in topics]:
                info.wait_for_publish(10)
            time.sleep(gap_s)
        time.sleep(1.0)
        pub.disconnect()
        pub.loop_stop()
        stop.set()
        gathered: list[tuple[int, float]] = []
        for _ in workers:
            gathered += results.get(timeout=60)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=30)
            if w.is_alive():
                w.kill()
    by_round: dict[int, list[float]] = defaultdict(list)
    for seq, latency in gathered:
        by_round[seq].append(latency)
    p99s = []
    for seq in range(rounds):
        got = by_round.get(seq, [])
        if len(got) < subscribers:
            console.print(f"[yellow]raw round {seq}: {len(got)}/{subscribers} received")
        p99s.append(percentile(got, 99) if got else math.nan)
    return p99s


def process_tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and all its descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [pid]
    while pending:
        p = pending.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except (OSError, IndexError, ValueError):
            continue
        pending += [int(c) for c in children]
    return total


def wait_quiet(seconds: float, what: str = "settling") -> None:
    with console.status(what):
        time.sleep(seconds)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.time()
    return t0, fn()
