"""`loaxa demo` / `make demo`: the whole system on one machine, in a few seconds.

Provisions the three example nodes, starts a project-local Mosquitto on a free port, the
controller and three simulated nodes (each a subprocess, as in the field), schedules a
Vietnamese welcome announcement and waits until every node's sink has played it; then
keeps running until Ctrl-C, and stops everything cleanly.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import wave
from pathlib import Path

import yaml

from firmware_config.broker import free_port, running_broker, wait_for_port
from firmware_config.provision import ProvisionedFleet, ensure_password, provision

EXAMPLES = Path(__file__).resolve().parent.parent / "firmware_config" / "examples"
WELCOME = "Chào mừng bà con đến với hệ thống truyền thanh thông minh của UBND xã."
WELCOME_DEADLINE_S = 30.0


def _http(method: str, url: str, body: dict | None = None, token: str = "") -> dict | list:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _login(base: str, username: str, password: str) -> str:
    form = urllib.parse.urlencode({"username": username, "password": password}).encode()
    with urllib.request.urlopen(f"{base}/api/auth/token", data=form, timeout=30) as resp:
        return json.loads(resp.read())["access_token"]


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    out = open(log, "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop_all(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def _wait_played(base: str, announcement_id: int, nodes: int, deadline: float,
                 token: str) -> dict:
    while True:
        a = _http("GET", f"{base}/api/announcements/{announcement_id}", token=token)
        assert isinstance(a, dict)
        done = [d for d in a["deliveries"] if d["status"] == "finished"]
        if len(done) >= nodes or time.monotonic() > deadline:
            return a
        time.sleep(0.5)


DEMO_CAMERAS = {"node-1": "thai_campus_motorbike_test2.mp4",
                "node-2": "thai_campus_motorbike_test2.mp4",
                "node-3": "thai_campus_motorbike_test3.mp4"}


def shared_dir() -> Path:
    return Path(os.environ.get("LOAXA_SHARED_DIR", EXAMPLES.parents[2] / "shared")).resolve()


def add_demo_cameras(node_configs: dict[str, Path], shared: Path) -> int:
    """Give each demo node a camera looping one of the shared street clips (the helmet
    check runs where the model is present). Returns how many cameras were added."""
    model = shared / "models" / "helmet-yolov12m-320.onnx"
    added = 0
    for node_id, clip_name in DEMO_CAMERAS.items():
        clip = shared / "data" / "video" / clip_name
        if node_id not in node_configs or not clip.exists():
            continue
        path = node_configs[node_id]
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        doc["cameras"] = [{
            "id": "cong-chinh", "name": "Cổng chính", "source": str(clip), "fps": 10,
            "helmet": {"model": str(model) if model.exists() else None, "threads": 1,
                       "max_rate_hz": 2},
            "cooldowns": {"per_camera_s": 60, "reminder_s": 120},
        }]
        path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
        added += 1
    return added


def controller_tls_env(fleet: ProvisionedFleet) -> dict[str, str]:
    """The controller's TLS files, as its LOAXA_* settings (the broker speaks only TLS)."""
    tls = fleet.controller_tls
    assert tls is not None and tls.cert and tls.key
    return {"LOAXA_MQTT_CA_FILE": str(tls.ca), "LOAXA_MQTT_CERT_FILE": str(tls.cert),
            "LOAXA_MQTT_KEY_FILE": str(tls.key)}


def run_demo(workdir: Path, http_port: int, exit_after_welcome: bool) -> int:
    t0 = time.monotonic()
    workdir = workdir.resolve()
    broker_port = free_port()
    fleet = provision(EXAMPLES, workdir, broker_port)
    cameras = add_demo_cameras(fleet.node_configs, shared_dir())
    if not cameras:
        print(f"no shared street clips under {shared_dir()}: nodes run without cameras")
    admin_password = ensure_password(workdir / "secrets", "admin").read_text().strip()
    exe = [sys.executable, "-m", "loaxa_cli"]
    env = {**os.environ, "LOAXA_DATA_DIR": str(workdir / "controller"),
           "LOAXA_MQTT_PORT": str(broker_port),
           "LOAXA_MQTT_USERNAME": fleet.controller_user,
           "LOAXA_MQTT_PASSWORD_FILE": str(fleet.controller_password_file),
           **controller_tls_env(fleet),
           "LOAXA_FLEET_DIR": str(workdir / "nodes"), "LOAXA_PORT": str(http_port),
           "LOAXA_START_LEAD_S": "4", "LOAXA_ADMIN_PASSWORD": admin_password}
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with running_broker(fleet.broker_conf, broker_port, logs / "mosquitto.log"):
        procs = [_spawn([*exe, "controller", "serve"], env, logs / "controller.log"),
                 _spawn([*exe, "simulate", "--nodes", "3", "--fleet", str(workdir)], env,
                        logs / "nodes.log")]
        try:
            base = f"http://127.0.0.1:{http_port}"
            wait_for_port("127.0.0.1", http_port, timeout=60)
            print(f"loaxa controller: {base}  (API docs: {base}/docs)")
            print(f"broker: 127.0.0.1:{broker_port} (TLS, fleet CA {fleet.ca_file})   "
                  f"logs: {logs}")
            print(f"sign in as admin / {admin_password}  (kept in {workdir}/secrets/admin.pass)")
            token = _login(base, "admin", admin_password)
            _wait_nodes_online(base, 3, time.monotonic() + 20, token)
            a = _http("POST", f"{base}/api/announcements",
                      {"title": "Chào mừng", "text": WELCOME, "play_now": True}, token)
            assert isinstance(a, dict)
            print(f"welcome announcement #{a['id']} scheduled for "
                  f"{a['schedules'][0]['start_at']} "
                  f"(voice: {a['engine_used']}"
                  + (f"; fell back: {a['fallback_reason']}" if a["fallback_reason"] else "")
                  + ")")
            result = _wait_played(base, a["id"], 3, time.monotonic() + WELCOME_DEADLINE_S, token)
            played = [d["node_id"] for d in result["deliveries"] if d["status"] == "finished"]
            print(f"played on {len(played)}/3 nodes ({', '.join(played)}) "
                  f"{time.monotonic() - t0:.1f} s after start; sinks: {workdir}/nodes/*/sink/")
            if len(played) < 3:
                print("NOT every node played the welcome: see the logs above", file=sys.stderr)
                return 1
            print(f"live: {base}/live (sign in, press «Bắt đầu phát», allow the microphone; "
                  f"each node's sink gets a live-*.wav)")
            if not exit_after_welcome:
                with contextlib.ExitStack() as extras:
                    demo_station(extras, base, token, workdir)
                    print("running; press Ctrl-C to stop")
                    while not stop.wait(1.0):
                        if any(p.poll() is not None for p in procs):
                            print("a demo process exited; stopping", file=sys.stderr)
                            return 1
            return 0
        finally:
            _stop_all(procs)
            print("stopped broker, controller and nodes")


def demo_station(extras: contextlib.ExitStack, base: str, token: str, workdir: Path) -> None:
    """A local Icecast station (the demo's chime, looped) registered as a relay source,
    or a clear message why there is none."""
    if shutil.which("icecast2") is None:
        print("relay: no station (icecast2 is not installed: apt-get install icecast2); "
              "register one with POST /api/stream-sources")
        return
    import numpy as np

    from broadcasts.chime import chime
    from devtools.icecast import running_icecast

    tone = workdir / "station.wav"
    with wave.open(str(tone), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((chime(rate=16000) * 32767 * 0.8).astype(np.int16).tobytes())
    icecast = extras.enter_context(running_icecast())
    feeder = icecast.feed(tone, "demo.mp3")
    extras.callback(feeder.kill)
    _http("POST", f"{base}/api/stream-sources",
          {"name": "Đài thử (demo)", "url": icecast.url("demo.mp3")}, token)
    print(f"relay: station «Đài thử (demo)» at {icecast.url('demo.mp3')}; {base}/relay "
          f"(a leader presses «Tiếp sóng ngay», staff schedule a slot; "
          f"each node's sink gets a live-*.wav)")


def _wait_nodes_online(base: str, count: int, deadline: float, token: str) -> None:
    while time.monotonic() < deadline:
        nodes = _http("GET", f"{base}/api/nodes", token=token)
        if sum(1 for n in nodes if n["online"]) >= count:  # type: ignore[index,union-attr]
            return
        time.sleep(0.3)
