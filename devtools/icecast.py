"""A real Icecast server (Debian's icecast2) on a free port, and an ffmpeg that feeds it a
local file as an MP3 station: what the relay tests and the demo pull from (development
only, never imported by a node or the controller)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from firmware_config.broker import free_port

SOURCE_PASSWORD = "nguon-thu-nghiem"
CONFIG = """<icecast>
  <location>loaxa tests</location><admin>tests@localhost</admin>
  <limits><clients>20</clients><sources>4</sources><queue-size>524288</queue-size>
    <client-timeout>30</client-timeout><header-timeout>15</header-timeout>
    <source-timeout>3</source-timeout><burst-size>16384</burst-size></limits>
  <authentication><source-password>{password}</source-password>
    <relay-password>{password}</relay-password><admin-user>admin</admin-user>
    <admin-password>{password}</admin-password></authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>1</fileserve>
  <paths><basedir>/usr/share/icecast2</basedir><logdir>{logs}</logdir>
    <webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot>
  </paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog>
    <loglevel>2</loglevel></logging>
  <security><chroot>0</chroot>{owner}</security>
</icecast>
"""


@dataclass
class Icecast:
    port: int
    folder: Path

    def url(self, mount: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mount}"

    def feed(self, source: Path, mount: str) -> subprocess.Popen:
        """An ffmpeg publishing ``source`` (looped, at its own pace) as an MP3 station."""
        proc = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
             "-stream_loop", "-1", "-i", str(source), "-c:a", "libmp3lame", "-b:a", "64k",
             "-content_type", "audio/mpeg", "-f", "mp3",
             f"icecast://source:{SOURCE_PASSWORD}@127.0.0.1:{self.port}/{mount}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url(mount), timeout=2) as r:
                    if r.read(1024):
                        return proc
            except OSError:
                time.sleep(0.2)
        proc.kill()
        raise RuntimeError("the station did not come up on icecast")


@contextmanager
def running_icecast() -> Iterator[Icecast]:
    """icecast2 on a free port; as root it drops to the icecast2 account (it refuses to
    run as root), so its folder is one that account can write."""
    folder = Path(tempfile.mkdtemp(prefix="loaxa-icecast-"))
    folder.chmod(0o777)
    port = free_port()
    owner = ("<changeowner><user>icecast2</user><group>icecast</group></changeowner>"
             if os.geteuid() == 0 else "")
    conf = folder / "icecast.xml"
    conf.write_text(CONFIG.format(password=SOURCE_PASSWORD, port=port, logs=folder,
                                  owner=owner))
    conf.chmod(0o644)
    proc = subprocess.Popen([shutil.which("icecast2") or "/usr/bin/icecast2", "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("icecast2 did not start") from None
                time.sleep(0.1)
        yield Icecast(port, folder)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(folder, ignore_errors=True)
