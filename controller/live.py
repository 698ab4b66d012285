"""Live audio at the controller: a source's sound cut into signed-session Opus frames and
fanned out once per commune or zone topic (the broker copies them to the nodes).

A :class:`LiveFeed` runs one ffmpeg that turns its input (the browser's WebM/Opus chunks
on stdin, or a radio stream's URL) into 16-bit mono PCM at the session's rate; its reader
thread cuts that into Opus packets (libopus through ``opuslib``, ≤ 24 kbit/s), groups them
into frames of ``frame_ms``, stamps each with its number and capture time, tags it with
the session key (:class:`~mqtt_contract.LiveFrame`) and publishes it, QoS 0, on every
topic of the session. A chime opens the session: its frames go out at once with the
first capture times, and the source's sound is heard after it (what the speaker says
while the chime plays is not sent, so the chime adds nothing to the delay).

Capture times run on a grid of ``frame_ms`` from the start; when the source falls behind
it (a stalled browser, a stream that hiccuped) by more than :data:`REANCHOR_S`, the grid
moves on and nodes hear silence for the gap instead of frames they would drop as late.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from broadcasts.uploads import UploadRejected, store_upload
from controller.db import Database
from controller.domain import Targets
from controller.models import LiveBroadcast
from controller.services import live as live_service
from controller.services.live import Opened
from controller.settings import Settings
from mqtt_contract import LiveFrame, LiveSession, LiveSource, Message

log = logging.getLogger(__name__)

PACKET_MS = 40
"""One Opus packet (a frame of 400 ms holds ten)."""
REANCHOR_S = 0.25
"""How far the source may lag the capture grid before the grid moves on."""
MAX_AHEAD_S = 2.0
"""A source faster than real time (a station's burst on connect, an HLS recording) is read
no further ahead of its capture grid than this: nodes buffer at most that much."""
MAX_RECORDING_S = 6 * 3600.0
IDLE_S = 10.0
"""A feed whose source sends nothing for this long ends (a page that never sent sound, a
stream that stalled without closing)."""

Publish = Callable[[Message], object]


@dataclass
class FeedStats:
    frames: int = 0
    bytes: int = 0
    reanchored: int = 0
    started_at: float = field(default_factory=time.time)
    last_frame_at: float | None = None
    ended: str | None = None
    """Why the feed ended (None while it runs)."""


class FrameEncoder:
    """PCM in, tagged frames out: the part of a feed that needs no process or thread."""

    def __init__(self, spec: LiveSession, bitrate: int, start: float | None = None) -> None:
        import opuslib  # type: ignore[import-untyped]

        self.spec, self.key = spec, spec.key_bytes()
        self.encoder = opuslib.Encoder(spec.sample_rate, 1, opuslib.APPLICATION_VOIP)
        self.encoder.bitrate = bitrate
        self.packet_samples = spec.sample_rate * PACKET_MS // 1000
        self.per_frame = spec.frame_ms // PACKET_MS
        self.grid_start = time.time() if start is None else start
        self.seq = 0
        self.reanchored = 0
        self._pending: list[bytes] = []

    @property
    def packet_bytes(self) -> int:
        return self.packet_samples * 2

    def next_capture_s(self) -> float:
        return self.grid_start + self.seq * self.spec.frame_ms / 1000

    def packet(self, pcm: bytes, now: float) -> bytes | None:
        """Encode one packet of PCM; return a packed frame once a frame is full."""
        self._pending.append(self.encoder.encode(pcm, self.packet_samples))
        if len(self._pending) < self.per_frame:
            return None
        return self.flush(now)

    def flush(self, now: float) -> bytes | None:
        """The packets encoded so far as one frame (a short one at the source's end)."""
        if not self._pending:
            return None
        packets, self._pending = tuple(self._pending), []
        natural = now - len(packets) * PACKET_MS / 1000
        """When the frame's first sample reached the controller."""
        if natural - self.next_capture_s() > REANCHOR_S:
            self.grid_start = natural - self.seq * self.spec.frame_ms / 1000
            self.reanchored += 1
        frame = LiveFrame(self.spec.id, self.seq, round(self.next_capture_s() * 1000),
                          PACKET_MS, packets)
        self.seq += 1
        return frame.pack(self.key)


def chime_pcm(sample_rate: int) -> bytes:
    """The bell that opens a live session, as 16-bit PCM at the session's rate."""
    import numpy as np

    from broadcasts.chime import chime

    samples = chime(rate=sample_rate)
    return (np.clip(samples, -1, 1) * 32767 * 0.8).astype("<i2").tobytes()


class LiveFeed:
    """One session's ffmpeg and reader thread (see the module doc)."""

    def __init__(self, spec: LiveSession, messages: Callable[[bytes], Iterable[Message]],
                 publish: Publish, bitrate: int, source: str, *, realtime: bool = False,
                 chime: bool = True, record_to: Path | None = None,
                 on_end: Callable[[LiveFeed], None] | None = None) -> None:
        """``source``: ``"-"`` for chunks written with :meth:`feed`, else a URL or file
        that ffmpeg reads (``realtime`` paces a file at its own speed)."""
        self.spec, self.messages, self.publish = spec, messages, publish
        self.encoder = FrameEncoder(spec, bitrate)
        self.stats = FeedStats()
        self.on_end = on_end
        self._record = record_to.open("wb") if record_to else None
        self._stop = threading.Event()
        args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin"]
        if source == "-":
            args = [a for a in args if a != "-nostdin"] + ["-fflags", "nobuffer", "-probesize",
                                                           "4096", "-analyzeduration", "0"]
        else:  # a station: probe briefly, so it is on air within a second or two
            args += ["-probesize", "65536", "-analyzeduration", "1000000"]
        if realtime:
            args.append("-re")
        args += ["-i", "pipe:0" if source == "-" else source, "-vn", "-ac", "1", "-ar",
                 str(spec.sample_rate), "-f", "s16le", "pipe:1"]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE if source == "-" else None,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.chime_s = self._send_chime() if chime else 0.0
        self._last_input = time.monotonic()
        self.voice_from = self.encoder.next_capture_s()
        """Sound that reaches the controller before this instant is not sent (the chime
        plays then)."""
        self._thread = threading.Thread(target=self._read, name=f"live-{spec.id[:8]}",
                                        daemon=True)
        self._thread.start()
        threading.Thread(target=self._watch, name=f"live-watch-{spec.id[:8]}",
                         daemon=True).start()

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            if time.monotonic() - self._last_input > IDLE_S:
                log.warning("live session %s: no sound from its source for %.0f s",
                            self.spec.id, IDLE_S)
                self.stop(f"no sound from the source for {IDLE_S:.0f} s")

    # input ----------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> bool:
        """Bytes from the browser (WebM/Opus): into ffmpeg. False once it is gone."""
        if self.proc.stdin is None or self._stop.is_set():
            return False
        try:
            self.proc.stdin.write(chunk)
            self.proc.stdin.flush()
            self._last_input = time.monotonic()
            return True
        except (BrokenPipeError, ValueError, OSError):
            return False

    def stop(self, why: str = "stopped") -> None:
        """End the feed (idempotent): ffmpeg is closed, the reader finishes."""
        if self._stop.is_set():
            return
        self._stop.set()
        self.stats.ended = why
        if self.proc.stdin:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        else:  # a station's URL: ffmpeg would read it on (a live stream never ends)
            with contextlib.suppress(OSError):
                self.proc.terminate()
        try:
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=3)

    @property
    def running(self) -> bool:
        return not self._stop.is_set()

    # output ---------------------------------------------------------------------------
    def _send_chime(self) -> float:
        """Send the chime's frames at once (their capture times are the session's first);
        return its length in seconds."""
        pcm = chime_pcm(self.spec.sample_rate)
        size = self.encoder.packet_bytes
        pcm += b"\0" * (-len(pcm) % (size * self.encoder.per_frame))
        start = self.encoder.grid_start
        for at in range(0, len(pcm), size):
            # the chime's frames are "captured" on the grid from the start, sent at once
            now = start + (at // size + 1) * PACKET_MS / 1000
            if (frame := self.encoder.packet(pcm[at:at + size], now)) is not None:
                self._send(frame, b"")  # not recorded: a rebroadcast adds its own chime
        return len(pcm) / 2 / self.spec.sample_rate

    def _send(self, frame: bytes, pcm: bytes) -> None:
        for msg in self.messages(frame):
            self.publish(msg)
        self.stats.frames += 1
        self.stats.bytes += len(frame)
        self.stats.last_frame_at = time.time()
        if self._record and pcm:
            self._record.write(pcm)

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        size = self.encoder.packet_bytes
        frame_pcm: list[bytes] = []
        try:
            while not self._stop.is_set():
                pcm = out.read(size)
                now = time.time()
                self._last_input = time.monotonic()
                if len(pcm) < size:  # ffmpeg ended: the source closed or failed
                    if pcm and now >= self.voice_from:
                        frame_pcm.append(pcm + b"\0" * (size - len(pcm)))
                        self.encoder.packet(frame_pcm[-1], now)
                    if (frame := self.encoder.flush(now)) is not None:
                        self._send(frame, b"".join(frame_pcm))
                    break
                if now < self.voice_from:
                    continue
                frame_pcm.append(pcm)
                if (frame := self.encoder.packet(pcm, now)) is not None:
                    self._send(frame, b"".join(frame_pcm))
                    frame_pcm = []
                    ahead = self.encoder.next_capture_s() - time.time()
                    if ahead > MAX_AHEAD_S:
                        self._stop.wait(ahead - MAX_AHEAD_S)
        except Exception:
            log.exception("live session %s: the feed failed", self.spec.id)
        finally:
            self.stats.reanchored = self.encoder.reanchored
            if self._record:
                self._record.close()
            if not self._stop.is_set():
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                self._stop.set()
                self.stats.ended = "source ended" + (f": {err.strip()[:300]}" if err else "")
                log.info("live session %s: %s", self.spec.id, self.stats.ended)
            if self.on_end:
                self.on_end(self)


class LiveDesk:
    """The controller's open live sessions: each one's feed, opened after its start
    command went out (so nodes hold the key before the first frame) and closed with its
    stop command, whoever ends it (a person, or its source ending)."""

    def __init__(self, db: Database, publish: Publish, settings: Settings,
                 media_root: Path) -> None:
        self.db, self.publish, self.settings = db, publish, settings
        self.media_root = media_root
        self.recordings = settings.data_dir / "live"
        self._feeds: dict[str, LiveFeed] = {}
        self._lock = threading.Lock()

    def open(self, targets: Targets, title: str, source: LiveSource, actor: str,
             url: str = "-", *, realtime: bool = False, chime: bool = True,
             relay_slot_id: int | None = None,
             stream_source_id: int | None = None, commune: str | None = None) -> Opened:
        """Open a session and its feed (``url``: ``"-"`` for browser chunks). ``commune``:
        the opener's (its targets stay inside it, controller/scope.py); None: the province."""
        with self.db.session(commune=commune) as s:
            opened = live_service.open_session(s, self.settings, targets, title, source, actor,
                                               relay_slot_id, stream_source_id)
        self.recordings.mkdir(parents=True, exist_ok=True)
        topics = opened.topics
        feed = LiveFeed(opened.session,
                        lambda frame: [t.spec.message(t.commune, frame, **t.params)
                                       for t in topics],
                        self.publish, self.settings.live_bitrate, url, realtime=realtime,
                        chime=chime, record_to=self.recordings / f"{opened.session.id}.pcm",
                        on_end=self._ended_by_itself)
        with self._lock:
            self._feeds[opened.session.id] = feed
        return opened

    def feed(self, session_id: str) -> LiveFeed | None:
        with self._lock:
            return self._feeds.get(session_id)

    def close(self, session_id: str, actor: str, reason: str = "ended") -> LiveBroadcast:
        """End the session: its feed stops, its nodes get ``live_stop``."""
        with self._lock:
            feed = self._feeds.pop(session_id, None)
        if feed is not None:
            feed.stop(reason)
        with self.db.session() as s:
            record = live_service.close_session(s, session_id, actor, reason,
                                                feed.stats.frames if feed else None)
        if feed is not None:
            threading.Thread(target=self._keep_recording, args=(feed,),
                             name=f"live-record-{session_id[:8]}", daemon=True).start()
        return record

    def _keep_recording(self, feed: LiveFeed) -> None:
        """The session's sound as one low-bitrate file (Ogg/Opus), kept as a recording
        staff can put in an announcement (record and rebroadcast)."""
        pcm = self.recordings / f"{feed.spec.id}.pcm"
        try:
            if pcm.stat().st_size == 0:
                return
            ogg = pcm.with_suffix(".ogg")
            subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                            "-f", "s16le", "-ar", str(feed.spec.sample_rate), "-ac", "1",
                            "-i", str(pcm), "-c:a", "libopus", "-b:a",
                            str(self.settings.live_bitrate), "-application", "voip",
                            str(ogg)], check=True, capture_output=True, timeout=900)
            stored = store_upload(ogg, self.media_root, max_seconds=MAX_RECORDING_S)
            ogg.unlink(missing_ok=True)
            with self.db.session() as s:
                live_service.keep_recording(s, feed.spec.id, stored.sha256, stored.format,
                                            stored.duration_s, stored.path.stat().st_size)
        except (OSError, subprocess.SubprocessError, UploadRejected) as exc:
            log.error("live session %s: its recording could not be kept: %s", feed.spec.id,
                      exc)
        finally:
            pcm.unlink(missing_ok=True)

    def _ended_by_itself(self, feed: LiveFeed) -> None:
        with self._lock:
            mine = self._feeds.get(feed.spec.id) is feed
        if mine:
            try:
                self.close(feed.spec.id, live_service.SYSTEM_ACTOR,
                           feed.stats.ended or "source ended")
            except Exception:
                log.exception("live session %s: could not be closed", feed.spec.id)

    def stop_all(self) -> None:
        with self._lock:
            ids = list(self._feeds)
        for session_id in ids:
            self.close(session_id, live_service.SYSTEM_ACTOR, "the controller stopped")
