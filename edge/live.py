"""The node's live player: frames of a live session played in step with the zone.

A ``live_start`` command (signed, so only the controller opens a session) brings the
session's id, its frame key and its timing (:class:`~mqtt_contract.LiveSession`). Frames
then come on the commune's or the zone's ``live`` topic, QoS 0; each carries its number,
its capture time and an HMAC tag under the session key, checked before anything else.

Every node plays frame N at its capture time plus the session's ``latency_ms``: the
nodes of a zone hold the same latency and synchronised clocks, so they are heard
together, the way plan items start together. A jitter buffer holds what arrived early;
on the play time of a frame that did not come, Opus's loss concealment (decoding
"nothing") fills its length, fading to silence after :data:`CONCEAL_FRAMES`, so a lost
frame on a 4G link is a short smear, never a stop. A session that hears no frame for
``silence_s`` ends by itself and lets the amplifier go: no speaker is left on when the
link drops, and the plan's next item plays on time.

The player runs on the node's loop (a timer per frame; decoding 400 ms of 16 kHz Opus
costs ~0.1 ms on a PC): it owns no thread. It holds the output through the scheduler
(:meth:`~edge.scheduler.LocalScheduler.claim_output`) at priority ``live``: scheduled
items yield to it, an emergency takes the output from it; the session then waits and
takes the output back with its next frame once the emergency has ended.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edge.audio_output import LiveStream, open_live_stream
from edge.loop import Reactor, Timer
from edge.scheduler import LocalScheduler, Occupant
from mqtt_contract import ContractError, LiveFrame, LiveSession, PlaybackEvent
from mqtt_contract import live_item_id as item_id_of

log = logging.getLogger(__name__)

CONCEAL_FRAMES = 2
"""Lost frames in a row that Opus conceals (it fades out by itself); after that silence."""
MAX_BUFFERED = 64
"""Frames held ahead of their play time at most (25 s of 400 ms frames)."""
WATCH_S = 0.5
"""How often the silence watchdog looks."""
MAX_VOLUME = 100
ENDED_MEMORY = 100
FIRST_FRAME_WAIT_S = 15.0
"""How long a session waits for its first frame (a relayed station takes a few seconds to
connect); the amplifier stays off meanwhile. After the first, ``silence_s`` applies."""

LiveReport = Callable[[str, PlaybackEvent, float, float, float | None, str], None]
"""(item id, event, planned at, actual at, seconds played or None, detail)."""


@dataclass
class LiveStats:
    received: int = 0
    late: int = 0
    concealed: int = 0
    bad: int = 0
    played_s: float = 0.0

    def summary(self) -> str:
        return (f"{self.received} frames, {self.concealed} concealed, {self.late} late, "
                f"{self.bad} refused")


def skip_due(pcm: bytes, late_s: float, sample_rate: int) -> bytes:
    """``pcm`` (16-bit mono) as a device starting ``late_s`` after its first sample was
    due must play it: without the samples already due. A device plays what it is given
    from the moment it is first written, so a node whose loop was busy for 30 ms at the
    session's first frame would otherwise be heard 30 ms behind its neighbours for the
    whole session (Snapcast's way: play at the shared time, skip what is past)."""
    skip = int(late_s * sample_rate) * 2
    if skip <= 0:
        return pcm
    return pcm[skip:]


@dataclass
class _Session:
    spec: LiveSession
    key: bytes
    decoder: object
    last_heard: float
    """Monotonic time of the last frame that passed its tag (or of the start)."""
    occupant: Occupant | None = None
    stream: LiveStream | None = None
    buffer: dict[int, LiveFrame] = field(default_factory=dict)
    ready: dict[int, bytes] = field(default_factory=dict)
    """Frames decoded (or concealed) as they came, in order, volume applied: at its play
    time a frame is only written (where a hundred simulated nodes share a loop, decoding
    at the deadline put 75 ms between the first and the last)."""
    decoded: int | None = None
    """The last sequence number decoded or concealed."""
    expected: int | None = None
    next_play: float | None = None
    """Wall-clock time the next frame is due at; None until the session is anchored."""
    timer: Timer | None = None
    first_play: float | None = None
    fresh: bool = False
    """The stream was just opened: its first sound starts the device's clock."""
    concealed_run: int = 0
    closing: bool = False
    """Asked to end: what is buffered still plays (the last words), then it ends."""
    stats: LiveStats = field(default_factory=LiveStats)

    @property
    def latency_s(self) -> float:
        return self.spec.latency_ms / 1000


class LivePlayer:
    def __init__(self, loop: Reactor, output: object, scheduler: LocalScheduler,
                 report: LiveReport, volume: Callable[[], int]) -> None:
        self.loop, self.output, self.scheduler = loop, output, scheduler
        self.report, self.volume = report, volume
        self._session: _Session | None = None
        self._watch: Timer | None = None
        self._ended: dict[str, None] = {}
        """Sessions already over here (the last :data:`ENDED_MEMORY`, oldest first): a
        start command redelivered after its stop stays over."""

    # commands (loop) ----------------------------------------------------------------
    def start(self, spec: LiveSession) -> tuple[bool, str]:
        """Open a session; the amplifier waits for its first frame in time."""
        current = self._session
        if spec.id in self._ended:
            return False, "that live session is over"
        if current and current.spec.id == spec.id:
            return True, "already on"
        if current:
            self._end(PlaybackEvent.stopped, "replaced by another live session")
        try:
            import opuslib  # type: ignore[import-untyped]
            decoder = opuslib.Decoder(spec.sample_rate, 1)
        except Exception as exc:  # libopus missing: say so, play nothing
            log.error("cannot decode live audio: %s", exc)
            return False, "no Opus decoder on this node"
        self._session = _Session(spec, spec.key_bytes(), decoder, time.monotonic())
        self._watch_later()
        log.info("live session %s opened (latency %d ms)", spec.id, spec.latency_ms)
        return True, "listening"

    def stop(self, session_id: str | None, drain: bool = True) -> bool:
        """End the session named (any, when None). ``drain``: the frames already here
        still play (the session's last second), then it ends; else it ends now (the
        ``stop`` command)."""
        current = self._session
        if current is None or session_id not in (None, current.spec.id):
            if session_id:
                self._remember_ended(session_id)
            return False
        if drain and current.stream is not None and not current.closing:
            current.closing = True
            self.loop.call_later(current.latency_s + current.spec.frame_ms / 1000 + 0.2,
                                 self._drained, current)
            return True
        self._end(PlaybackEvent.finished, "ended by the controller")
        return True

    def _drained(self, session: _Session) -> None:
        if self._session is session:
            self._end(PlaybackEvent.finished, "ended by the controller")

    def _remember_ended(self, session_id: str) -> None:
        self._ended[session_id] = None
        while len(self._ended) > ENDED_MEMORY:
            del self._ended[next(iter(self._ended))]

    def close(self) -> None:
        if self._session:
            self._end(PlaybackEvent.stopped, "the node is stopping")
        if self._watch:
            self._watch.cancel()

    def now_playing(self) -> str | None:
        s = self._session
        return (s.spec.title or "live") if s and s.occupant else None

    @property
    def stats(self) -> LiveStats | None:
        return self._session.stats if self._session else None

    # frames (loop) ------------------------------------------------------------------
    def frame(self, data: bytes) -> None:
        """A frame from the ``live`` topics: checked, buffered, maybe the anchor."""
        s = self._session
        if s is None or LiveFrame.session_of(data) != s.spec.id:
            return  # no session here, or another's: not ours to judge
        try:
            frame = LiveFrame.unpack(data, s.key)
        except ContractError as exc:
            s.stats.bad += 1
            if s.stats.bad in (1, 10, 100):
                log.warning("live session %s: frame refused (%s; %d so far)", s.spec.id,
                            exc, s.stats.bad)
            return
        s.last_heard = time.monotonic()
        s.stats.received += 1
        if s.expected is not None and frame.seq < s.expected:
            s.stats.late += 1
            return
        if len(s.buffer) < MAX_BUFFERED:
            s.buffer[frame.seq] = frame
        if s.next_play is None:
            self._anchor(s, frame)
        elif frame.seq in s.buffer:
            self._decode_upto(s, frame.seq)

    def _decode_upto(self, s: _Session, seq: int) -> None:
        """Decode frames in order up to ``seq``; those missing before it are lost (one
        broker connection keeps QoS 0 frames in order): conceal them now, in their place."""
        first = seq if s.decoded is None else s.decoded + 1
        for n in range(max(first, seq - MAX_BUFFERED), seq + 1):
            frame = s.buffer.get(n)
            if frame is not None:
                s.concealed_run = 0
            s.ready[n] = self._scaled(self._decode(s, frame) if frame else self._conceal(s))
            s.decoded = n

    def _play_at(self, s: _Session, frame: LiveFrame) -> float:
        return frame.capture_ms / 1000 + s.latency_s

    def _anchor(self, s: _Session, frame: LiveFrame) -> None:
        """Start (or restart, after an emergency) playing from ``frame`` if it can still be
        heard on time; a frame already late is dropped and the next one tried."""
        play_at = self._play_at(s, frame)
        if play_at <= time.time():
            log.debug("live frame %d late by %.3f s", frame.seq, time.time() - play_at)
            s.buffer.pop(frame.seq, None)
            s.stats.late += 1
            return
        if s.occupant is None and not self._claim(s):
            log.debug("live session %s waits: a higher item holds the output", s.spec.id)
            s.buffer.clear()  # an emergency plays: frames meanwhile are not heard
            return
        s.expected, s.next_play, s.decoded = frame.seq, play_at, None
        self._decode_upto(s, frame.seq)
        s.timer = self.loop.call_at_wall(play_at, self._tick)

    def _claim(self, s: _Session) -> bool:
        occupant = Occupant(s.spec.priority, self._preempted)
        if self.scheduler.claim_output(occupant) is None:
            return False
        s.occupant = occupant
        s.stream = open_live_stream(self.output, item_id_of(s.spec.id), s.spec.sample_rate)
        s.fresh = True
        return True

    def _tick(self) -> None:
        """The play time of frame ``expected``: its audio (decoded when it came), or its
        concealment when it never came."""
        s = self._session
        if s is None or s.stream is None or s.next_play is None or s.expected is None:
            return
        frame = s.buffer.pop(s.expected, None)
        if frame is None and s.closing and not s.buffer:
            self._end(PlaybackEvent.finished, "ended by the controller")
            return
        gap = b""
        if frame is not None and self._play_at(s, frame) > s.next_play + frame.duration_ms / 2000:
            # the source started afresh later (it fell behind): silence until then
            delay = self._play_at(s, frame) - s.next_play
            gap = b"\0\0" * int(delay * s.spec.sample_rate)
            s.next_play = self._play_at(s, frame)
        pcm = s.ready.pop(s.expected, None)
        if pcm is None:  # not here by its play time: conceal it now
            self._decode_upto(s, s.expected)
            pcm = s.ready.pop(s.expected)
        duration = len(pcm) / 2 / s.spec.sample_rate
        heard = pcm
        if s.fresh:  # the first sound starts the device: not one sample late
            heard = skip_due(pcm, time.time() - s.next_play, s.spec.sample_rate)
            s.fresh = not heard
        if heard:
            s.stream.write(gap + heard if gap else heard)
        if s.first_play is None:  # "started" once the first sound is heard, sent when idle
            s.first_play = time.time()
            self.loop.call_when_idle(self.report, item_id_of(s.spec.id),
                                     PlaybackEvent.started, s.next_play, s.first_play, None, "")
        s.stats.played_s += duration
        s.expected += 1
        s.next_play += duration
        s.timer = self.loop.call_at_wall(s.next_play, self._tick)

    def _decode(self, s: _Session, frame: LiveFrame) -> bytes:
        size = s.spec.sample_rate * frame.packet_ms // 1000
        out = []
        for packet in frame.packets:
            try:
                out.append(s.decoder.decode(packet, size))  # type: ignore[attr-defined]
            except Exception:  # a packet libopus cannot read: conceal it
                out.append(s.decoder.decode(b"", size))  # type: ignore[attr-defined]
        return b"".join(out)

    def _conceal(self, s: _Session) -> bytes:
        """A lost frame's length: Opus's concealment (it fades), then silence."""
        s.stats.concealed += 1
        s.concealed_run += 1
        samples = s.spec.sample_rate * s.spec.frame_ms // 1000
        if s.concealed_run <= CONCEAL_FRAMES:
            return s.decoder.decode(b"", samples)  # type: ignore[attr-defined]
        return b"\0\0" * samples

    def _scaled(self, pcm: bytes) -> bytes:
        volume = self.volume()
        if volume >= MAX_VOLUME:
            return pcm
        import numpy as np

        samples = np.frombuffer(pcm, dtype="<i2").astype(np.int32) * volume // MAX_VOLUME
        return samples.astype("<i2").tobytes()

    # ends -----------------------------------------------------------------------------
    def _preempted(self) -> None:
        """An emergency took the output: stop hearing the session, keep it open."""
        s = self._session
        if s is None:
            return
        log.info("live session %s yields to an emergency", s.spec.id)
        self._release(s, give_back=False)

    def _release(self, s: _Session, give_back: bool) -> None:
        if s.timer:
            s.timer.cancel()
        if s.stream:
            s.stream.close(cut=not give_back)
        if give_back and s.occupant:
            self.scheduler.release_output(s.occupant)
        s.stream = s.occupant = s.timer = s.next_play = s.expected = s.decoded = None
        s.buffer.clear()
        s.ready.clear()

    def _watch_later(self) -> None:
        if self._watch:
            self._watch.cancel()
        self._watch = self.loop.call_later(WATCH_S, self._watchdog)

    def _watchdog(self) -> None:
        self._watch = None
        s = self._session
        if s is None:
            return
        quiet = time.monotonic() - s.last_heard
        allowed = s.spec.silence_s if s.stats.received else max(s.spec.silence_s,
                                                                 FIRST_FRAME_WAIT_S)
        if quiet >= allowed:
            self._end(PlaybackEvent.stopped, f"no frame for {quiet:.1f} s")
            return
        self._watch_later()

    def _end(self, event: PlaybackEvent, why: str) -> None:
        s = self._session
        assert s is not None
        self._session = None
        self._remember_ended(s.spec.id)
        self._release(s, give_back=True)
        log.info("live session %s ended (%s): %s", s.spec.id, why, s.stats.summary())
        if s.first_play is not None:
            self.report(item_id_of(s.spec.id), event, s.first_play, s.first_play,
                        s.stats.played_s, f"{why}; {s.stats.summary()}")
