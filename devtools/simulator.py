"""Many simulated nodes: the node's own parts, real MQTT, WAV file sinks, one loop each worker.

Each simulated node is a full :class:`~edge.agent.EdgeAgent` with its own broker account,
store, cache and sink folder. All the agents of one worker process run on ONE event loop
(:class:`~edge.loop.Reactor`, epoll over every agent's socket), as a node's parts run on
its own loop on a Pi: no thread per node, no thread per playback. Worker processes split
the agents so both cores work (``--processes``).

What differs from a field node, because a thousand "nodes" share two cores and one disk
instead of having one Pi each (see docs/benchmarks.md):

- the sound card: :class:`SharedDecodeSink`, a file sink that decodes a clip once per
  worker process and volume and hard-links it into each node's sink folder (a real
  node decodes its own copy on its own CPU);
- the clock source: one :class:`~edge.telemetry.ClockSource` per process (the nodes share
  this machine's clock, so one reading serves them all).

What cannot be removed: the agents of one process share one core, so work a real node
does on its own CPU (parsing a command, a report, a plan) queues behind its neighbours';
figures from a dense simulation are upper bounds for a field node.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import resource
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

from broadcasts import decode_to_wav
from edge.agent import EdgeAgent
from edge.audio_output import FileSink, PreparedClip, wav_duration, write_head
from edge.loop import Reactor
from edge.telemetry import ClockSource
from firmware_config.schema import NodeConfig, load_node_config

log = logging.getLogger(__name__)

AGENTS_PER_PROCESS = 500
"""Default ceiling of agents per worker process (one event loop each)."""


def find_node_configs(fleet_dir: Path) -> list[Path]:
    return sorted(fleet_dir.glob("nodes/*/node.yaml"))


def default_processes(nodes: int) -> int:
    """Enough workers that none passes :data:`AGENTS_PER_PROCESS`, and no more than cores."""
    return max(1, min(os.cpu_count() or 1, math.ceil(nodes / AGENTS_PER_PROCESS)))


def raise_file_limit() -> None:
    """Every agent holds a socket and SQLite files: lift the soft descriptor limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class SharedDecodes:
    """Clips decoded in one folder, once per (clip, volume), for every sink sharing it.

    Decoding runs in the loop's worker threads: agents asking for a clip being decoded
    wait for that one decode."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.decoded: dict[tuple[str, int], PreparedClip] = {}
        self._locks: dict[tuple[str, int], threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, key: tuple[str, int]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


class SharedDecodeSink(FileSink):
    """A file sink whose decoded clips are shared by every agent of one process.

    ``prepare`` decodes each (clip, volume) once (:class:`SharedDecodes`); ``start``
    hard-links the WAV into the node's sink folder. A preempted clip is replaced by a
    truncated copy, never cut in place, because the link shares its bytes with every
    other node's copy.
    """

    def __init__(self, directory: Path, shared: SharedDecodes, realtime: bool = True) -> None:
        super().__init__(directory, realtime)
        self.shared = shared
        self.decode_dir = shared.directory

    def prepare_key(self, media: Path, volume: int, work_dir: Path) -> Hashable:
        return self.decode_dir, media.name, volume  # one decode for every node sharing it

    def ready(self, media: Path, volume: int, work_dir: Path) -> PreparedClip | None:
        clip = self.shared.decoded.get((media.name, volume))
        return clip if clip is not None and clip.wav.exists() else None

    def prepare(self, media: Path, volume: int, work_dir: Path) -> PreparedClip:
        key = (media.name, volume)
        with self.shared.lock(key):
            clip = self.shared.decoded.get(key)
            if clip is None or not clip.wav.exists():
                self.decode_dir.mkdir(parents=True, exist_ok=True)
                wav = self.decode_dir / f"{media.stem}-v{volume}.wav"
                seconds = (wav_duration(wav) if wav.exists()
                           else decode_to_wav(media, wav, volume=volume))
                clip = PreparedClip(wav, seconds)
                self.shared.decoded[key] = clip
            return clip

    def place(self, clip: PreparedClip, out: Path) -> None:
        try:
            os.link(clip.wav, out)
        except OSError:  # another file system, or the name exists: copy instead
            out.unlink(missing_ok=True)
            shutil.copyfile(clip.wav, out)

    def cut(self, clip: PreparedClip, out: Path, played: float) -> None:
        out.unlink(missing_ok=True)  # the link shares its bytes: never cut it in place
        write_head(clip.wav, out, played)


def make_agent(config: NodeConfig, loop: Reactor, clock: ClockSource,
               decodes: SharedDecodes | None = None) -> EdgeAgent:
    """An agent for ``config`` on the shared ``loop``; with ``decodes``, file sinks
    share decoded clips."""
    sink = None
    if decodes is not None and config.audio.output == "file":
        sink = SharedDecodeSink(config.audio.file_dir, decodes, config.audio.realtime)
    return EdgeAgent(config, output=sink, loop=loop, clock=clock)


def run_simulation(configs: Sequence[Path], stop: threading.Event,
                   share_decode: bool = True) -> list[EdgeAgent]:
    """Run one agent per config on one event loop in this process until ``stop`` is set.

    With ``share_decode`` the agents' file sinks decode each clip once for all of them
    (:class:`SharedDecodeSink`), in a temporary folder removed at the end.
    """
    raise_file_limit()
    decode_dir = Path(tempfile.mkdtemp(prefix="loaxa-sim-decode-")) if share_decode else None
    loop, clock = Reactor("simulator", workers=2), ClockSource()
    decodes = SharedDecodes(decode_dir) if decode_dir else None
    agents = [make_agent(load_node_config(c), loop, clock, decodes) for c in configs]
    loop.start()
    try:
        for agent in agents:
            agent.start()
        log.info("%d simulated nodes running in process %d", len(agents), os.getpid())
        stop.wait()
    finally:
        for agent in agents:
            try:
                agent.stop()
            except Exception:  # one agent's failed stop must not leave the others running
                log.exception("stopping %s failed", agent.node)
        loop.stop()
        if decode_dir:
            shutil.rmtree(decode_dir, ignore_errors=True)
    return agents


def _worker(configs: list[str], stop: Any, log_level: str, share_decode: bool) -> None:
    """One worker process: its share of the agents, until the parent says stop or dies."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s [w{os.getpid()}] %(name)s: "
                               "%(message)s")
    local = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: local.set())
    parent = os.getppid()

    def watch() -> None:
        while not local.wait(0.5):
            if stop.is_set() or os.getppid() != parent:  # told to, or orphaned
                local.set()

    threading.Thread(target=watch, name="swarm-watch", daemon=True).start()
    run_simulation([Path(c) for c in configs], local, share_decode)


def split(items: Sequence[Path], parts: int) -> list[list[Path]]:
    """``items`` dealt round-robin into ``parts`` non-empty lists (zones spread evenly)."""
    parts = max(1, min(parts, len(items)))
    return [list(items[i::parts]) for i in range(parts)]


def run_swarm(configs: Sequence[Path], processes: int, stop: threading.Event,
              log_level: str = "warning", share_decode: bool = True) -> int:
    """Run the agents of ``configs`` over ``processes`` worker processes until ``stop``.

    Returns how many workers exited with an error. Workers stop when ``stop`` is set, on
    SIGTERM/SIGINT, or when this process disappears (so a killed benchmark leaves no
    orphans). With one process and no sharing this is :func:`run_simulation`.
    """
    ctx = multiprocessing.get_context("spawn")
    mp_stop = ctx.Event()
    workers = [ctx.Process(target=_worker, args=([str(c) for c in chunk], mp_stop, log_level,
                                                 share_decode),
                           name=f"loaxa-sim-{n}", daemon=False)
               for n, chunk in enumerate(split(configs, processes))]
    for w in workers:
        w.start()
    log.info("%d simulated nodes in %d processes", len(configs), len(workers))
    try:
        while not stop.wait(0.5):
            if any(w.exitcode not in (None, 0) for w in workers):
                log.error("a simulator worker died; stopping the others")
                break
    finally:
        mp_stop.set()
        for w in workers:
            w.join(timeout=20)
        for w in workers:
            if w.is_alive():
                w.kill()
                w.join(timeout=5)
    return sum(1 for w in workers if w.exitcode not in (0, None))
