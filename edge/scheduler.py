"""The node's local scheduler: fires plan items at their absolute time, from its own store.

Nothing here waits for the network. The plan and the media are already on the node; the
scheduler picks the most urgent due job, has it decoded ahead of the deadline (in the
loop's worker pool), arms a timer on the deadline and starts the output on it. It runs on
the node's event loop and never blocks it: playing is polled, not waited for.
Priorities decide clashes (DESIGN.md, principle 5): a higher priority preempts a lower
one; an equal or lower one waits its turn; quiet hours skip ordinary items and reminders,
never emergencies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.amplifier import Amplifier
from edge.audio_output import AudioOutput, Playing, PreparedClip
from edge.loop import Reactor, Timer
from edge.media_cache import MediaCache
from edge.store import FINAL_STATES, ItemState, NodeStore
from mqtt_contract import PRIORITY_RANK, MediaRef, Plan, PlaybackEvent, Priority, QuietWindow

log = logging.getLogger(__name__)

STATE_WRITE_DELAY_S = 0.2
"""Item states reach the node's store this long after they change, batched. A node that
loses power within that window may replay the item it had just started."""
MAX_IDLE_S = 30.0
"""The scheduler looks again at least this often (a wall clock stepped by NTP)."""
LATE_GRACE_S = 30.0
"""A job whose start passed by more than this is reported missed instead of played late;
one whose media is still not here by then is reported failed (it never holds the rest)."""
CLOCK_STEP_S = 0.5
"""A wall clock that moves this much against the monotonic one has been stepped (NTP, a
dead RTC battery corrected, an operator): timers armed for wall times are re-armed."""
CLOCK_CHECK_S = 2.0
"""How often the scheduler compares the two clocks."""
MEDIA_MISSING = "media not received in time"
INTERRUPTED = "interrupted: the node stopped while playing it"
STORAGE_FULL = "media not received in time: the node's storage is full"


@dataclass
class Job:
    item_id: str
    media: MediaRef
    start_at: float
    priority: Priority
    title: str = ""
    volume: int | None = None
    repeat: int = 1
    ignore_quiet_hours: bool = False

    @property
    def rank(self) -> int:
        return PRIORITY_RANK[self.priority]

    @classmethod
    def from_plan(cls, plan: Plan) -> dict[str, Job]:
        return {
            i.id: cls(i.id, i.media, i.start_at.timestamp(), i.priority, i.title, i.volume,
                      i.repeat, i.ignore_quiet_hours)
            for i in plan.items
        }


@dataclass
class Running:
    job: Job
    clip: PreparedClip
    playing: Playing
    actual_at: float
    """Wall-clock time of the start, as reported."""
    repetition: int = 1
    played_before: float = 0.0
    """Seconds played by the earlier repetitions."""

    def played(self) -> float:
        return self.played_before + self.playing.played()


Report = Callable[[Job, PlaybackEvent, float, float | None, str], None]


@dataclass
class Occupant:
    """A player outside the plan (a live session, edge/live.py) holding the output at a
    priority; ``preempted`` is called when a higher job takes the output from it."""

    priority: Priority
    preempted: Callable[[], None]

    @property
    def rank(self) -> int:
        return PRIORITY_RANK[self.priority]


class LocalScheduler:
    def __init__(self, loop: Reactor, store: NodeStore, cache: MediaCache,
                 output: AudioOutput, amplifier: Amplifier, report: Report,
                 request_media: Callable[[MediaRef], None], volume: Callable[[], int],
                 quiet_hours: QuietWindow, timezone: str, prepare_ahead_s: float,
                 work_dir: Path) -> None:
        self.loop, self.store, self.cache, self.output = loop, store, cache, output
        self.amp, self.report, self.request_media = amplifier, report, request_media
        self.volume = volume
        self.quiet_hours, self.tz = quiet_hours, ZoneInfo(timezone)
        self.prepare_ahead_s, self.work_dir = prepare_ahead_s, work_dir
        self._states = store.item_states()
        """item id -> state (read on every decision), written to the store shortly."""
        self._unwritten: dict[str, str] = {}
        self._write_timer: Timer | None = None
        self._plan_jobs: dict[str, Job] = {}
        self._urgent: list[Job] = []
        self._prepared: dict[str, PreparedClip] = {}
        self._preparing: set[str] = set()
        self._current: Running | None = None
        self._armed: tuple[Job, Timer, float] | None = None
        """The job whose deadline timer is set, the timer, and the wall time it is for."""
        self._clock_timer: Timer | None = None
        self._wall_offset = time.time() - time.monotonic()
        self._tick_timer: Timer | None = None
        self._poll_timer: Timer | None = None
        self._closed = False
        self._occupant: Occupant | None = None

    # inputs from the agent (loop thread) -------------------------------------------
    def set_plan(self, plan: Plan | None) -> None:
        if plan and plan.quiet_hours:
            self.quiet_hours = plan.quiet_hours
        self._plan_jobs = Job.from_plan(plan) if plan else {}
        current = self._current
        if current and current.job.item_id not in self._plan_jobs and not self._is_urgent(
                current.job):
            self._stop_current(PlaybackEvent.stopped)  # cancelled while playing
        self._disarm()
        self.wake()

    def submit(self, job: Job) -> None:
        """Play a job as soon as its priority allows (emergency commands, reminders)."""
        if self._states.get(job.item_id):
            return  # a replayed command: already handled
        self._set_state(job.item_id, ItemState.queued)
        self._urgent.append(job)
        self._disarm()
        self.wake()

    def stop_playback(self) -> bool:
        """The stop command: end what plays now and drop queued commands."""
        for job in self._urgent:
            self._set_state(job.item_id, ItemState.stopped)
        self._urgent.clear()
        self._disarm()
        stopped = self._stop_current(PlaybackEvent.stopped)
        self.wake()
        return stopped

    def claim_output(self, occupant: Occupant) -> float | None:
        """Let an outside player (a live session) take the output at its priority: a lower
        item playing now is preempted (reported ``preempted``, not resumed); items due
        while it holds the output wait, and play when it lets go if that is within
        :data:`LATE_GRACE_S` of their start (else they are reported skipped). None when
        something at least as high plays now; else the amplifier's warm-up."""
        current = self._current
        if current and current.job.rank >= occupant.rank:
            return None
        if current:
            self._stop_current(PlaybackEvent.preempted)
        self._disarm()
        self._occupant = occupant
        return self.amp.on()

    def release_output(self, occupant: Occupant) -> None:
        """The outside player is done: the amplifier goes off unless a job follows."""
        if self._occupant is not occupant:
            return
        self._occupant = None
        if self._current is None and not self._urgent:
            self.amp.off()
        self.wake()

    def _occupant_blocks(self, job: Job) -> bool:
        return self._occupant is not None and self._occupant.rank >= job.rank

    def now_playing(self) -> Job | None:
        current = self._current
        return current.job if current else None

    def wake(self) -> None:
        """Look again now (a plan, a command, media completed, a clip decoded)."""
        self._wake_in(0.0)

    def item_state(self, item_id: str) -> str | None:
        return self._states.get(item_id)

    def start(self) -> None:
        self._fail_interrupted()
        self._watch_clock()
        self.wake()

    def close(self) -> None:
        """Stop playing (its last report is written) and cancel every timer."""
        self._closed = True
        self.stop_playback()
        for timer in (self._tick_timer, self._poll_timer, self._write_timer,
                      self._clock_timer):
            if timer:
                timer.cancel()
        self.write_states()

    # decisions ------------------------------------------------------------------------
    def _wake_in(self, delay: float) -> None:
        if self._closed:
            return
        when = time.monotonic() + max(0.0, min(delay, MAX_IDLE_S))
        if self._tick_timer is not None and not self._tick_timer.cancelled:
            if self._tick_timer.when <= when:
                return
            self._tick_timer.cancel()
        self._tick_timer = self.loop.call_at(when, self._tick)

    def _tick(self) -> None:
        self._tick_timer = None
        now = time.time()
        self._skip_missed(now)
        job = self._next_job(now)
        self._wake_in(self._until_media_deadline(now))
        if job is None:
            self._wake_in(self._until_next_prepare(now))
            return
        self._handle(job, now)

    def _next_job(self, now: float) -> Job | None:
        """The most urgent due job whose media is here. A due job still without its media
        is asked for and waits aside: it holds back nothing (an emergency whose media never
        came used to be picked on every look, and every item after it was skipped), and
        once its start plus :data:`LATE_GRACE_S` has passed it is reported failed."""
        due = [j for j in self._urgent if self._open(j)] + [
            j for j in self._plan_jobs.values()
            if j.start_at <= now + self.prepare_ahead_s and self._open(j)
        ]
        ready = [j for j in due if self._media_here(j, now)]
        if not ready:
            return None
        return min(ready, key=lambda j: (-j.rank, j.start_at))

    def _media_here(self, job: Job, now: float) -> bool:
        """Is the job's media in the cache? If not, ask for it, or give the job up once its
        start plus the grace has passed (failed, "media not received in time")."""
        if self.cache.has(job.media.sha256):
            return True
        if not self._open(job):
            return False  # given up just now under its other entry (command and plan item)
        if job.start_at + LATE_GRACE_S < now:
            self._finish_unplayed(job, PlaybackEvent.failed, self._missing_reason())
        else:
            self.request_media(job.media)
        return False

    def _until_media_deadline(self, now: float) -> float:
        """Seconds until the first job waiting for its media is due to be given up (the
        fetcher's completion wakes the scheduler earlier when the media comes)."""
        waiting = [j.start_at + LATE_GRACE_S - now for j in self._waiting_jobs(now)]
        return max(0.0, min(waiting)) + 0.01 if waiting else MAX_IDLE_S

    def _waiting_jobs(self, now: float) -> list[Job]:
        return [j for j in [*self._urgent, *self._plan_jobs.values()]
                if j.start_at <= now + self.prepare_ahead_s and self._open(j)
                and not self.cache.has(j.media.sha256)]

    def _open(self, job: Job) -> bool:
        """Neither playing nor done. An emergency arrives twice, as a command and as a plan
        item with the same id; whichever starts, the other must not play it again."""
        return self._states.get(job.item_id) not in (*FINAL_STATES, ItemState.started)

    def _drop_urgent(self, item_id: str) -> None:
        self._urgent[:] = [j for j in self._urgent if j.item_id != item_id]

    def _handle(self, job: Job, now: float) -> None:
        media = self.cache.path(job.media.sha256)
        if media is None:
            self.request_media(job.media)
            self._wake_in(0.5)
            return
        if self._blocked_by_quiet_hours(job):
            self._finish_unplayed(job, PlaybackEvent.skipped, "quiet hours")
            self.wake()
            return
        current = self._current
        if current and current.job.rank >= job.rank:
            return  # the current item's end wakes the scheduler
        clip = self._prepared.get(job.item_id) or self._prepare(job, media)
        if clip is None:
            return  # decoding: its end wakes the scheduler
        if self._armed and self._armed[0].item_id == job.item_id and not self._drifted():
            return  # its deadline timer is set
        if self._occupant_blocks(job):
            return  # decoded, waiting for the live session to let go (it wakes us)
        self._disarm()
        warm = self.amp.on()
        start = max(job.start_at, time.time() + warm)
        if start <= time.time():
            self._fire(job)  # due already (an emergency): no second trip through the loop
            return
        self._armed = (job, self.loop.call_later(start - time.time(), self._fire, job), start)

    def _drifted(self) -> bool:
        """Has the wall clock moved against the armed timer (which runs on the monotonic
        clock) since it was set?"""
        assert self._armed is not None
        _, timer, start = self._armed
        return abs((timer.when - time.monotonic()) - (start - time.time())) > CLOCK_STEP_S

    def _watch_clock(self) -> None:
        """Notice a stepped wall clock within :data:`CLOCK_CHECK_S` and look again: items
        are absolute wall times, timers run on the monotonic clock."""
        offset = time.time() - time.monotonic()
        if abs(offset - self._wall_offset) > CLOCK_STEP_S:
            log.warning("the wall clock stepped by %+.1f s; the schedule is looked at again",
                        offset - self._wall_offset)
            self.wake()
        self._wall_offset = offset
        if not self._closed:
            self._clock_timer = self.loop.call_later(CLOCK_CHECK_S, self._watch_clock)

    def _prepare(self, job: Job, media: Path) -> PreparedClip | None:
        """The clip if it was decoded before (no hand-off to a thread, no second look);
        otherwise None, and it is decoded in the worker pool, after which the scheduler
        looks again. A hand-off to a thread costs a GIL switch (up to 5 ms), which a
        hundred nodes on one loop would queue for."""
        if job.item_id in self._preparing:
            return None
        self.cache.touch(job.media.sha256)  # the most recently used: evicted last
        volume = job.volume if job.volume is not None else self.volume()
        if clip := self.output.ready(media, volume, self.work_dir):
            self._prepared[job.item_id] = clip
            return clip
        self._preparing.add(job.item_id)

        def done(clip: PreparedClip | None, error: BaseException | None) -> None:
            self._preparing.discard(job.item_id)
            if error is not None or clip is None:
                log.error("cannot decode %s: %s", job.item_id, error)
                self._finish_unplayed(job, PlaybackEvent.failed, "the clip cannot be decoded")
            else:
                self._prepared[job.item_id] = clip
            self.wake()

        self.loop.run_blocking(lambda: self.output.prepare(media, volume, self.work_dir), done,
                               key=self.output.prepare_key(media, volume, self.work_dir))
        return None

    def _disarm(self) -> None:
        if self._armed:
            self._armed[1].cancel()
            self._armed = None

    def _blocked_by_quiet_hours(self, job: Job) -> bool:
        if job.priority != Priority.ordinary or job.ignore_quiet_hours:
            return False  # quiet hours hold back ordinary items and reminders only
        local = datetime.fromtimestamp(max(job.start_at, time.time()), self.tz).time()
        return self.quiet_hours.contains(local)

    def _skip_missed(self, now: float) -> None:
        missed = [j for j in self._plan_jobs.values()
                  if j.start_at + LATE_GRACE_S < now and not self._states.get(j.item_id)]
        for job in missed:
            if not self.cache.has(job.media.sha256):
                self._finish_unplayed(job, PlaybackEvent.failed, self._missing_reason())
            else:
                self._finish_unplayed(job, PlaybackEvent.skipped,
                                      "start time passed while the node was busy or down")

    def _missing_reason(self) -> str:
        """Why media did not come: a full disk is said so (it needs someone on site)."""
        return STORAGE_FULL if self.cache.full else MEDIA_MISSING

    def _until_next_prepare(self, now: float) -> float:
        starts = [j.start_at for j in self._plan_jobs.values()
                  if not self._states.get(j.item_id)]
        return min(starts) - self.prepare_ahead_s - now if starts else MAX_IDLE_S

    # playing ----------------------------------------------------------------------------
    def _fire(self, job: Job) -> None:
        """The deadline: preempt what plays, start the output, and nothing slow."""
        self._armed = None
        clip = self._prepared.get(job.item_id)
        if clip is None or not self._open(job) or self._closed or not self._still_due(job):
            self.wake()
            return
        current = self._current
        if current:
            if current.job.rank >= job.rank:
                self.wake()
                return
            self._stop_current(PlaybackEvent.preempted)
        if self._occupant is not None:
            if self._occupant_blocks(job):
                self.wake()
                return
            occupant, self._occupant = self._occupant, None
            occupant.preempted()  # an emergency takes the output from a live session
        self._drop_urgent(job.item_id)
        self._set_state(job.item_id, ItemState.started)
        playing = self.output.start(clip, f"{job.item_id}-1")
        actual = time.time()
        self._current = Running(job, clip, playing, actual)
        # the "started" report (built, stored, published) waits for a quiet moment: on the
        # deadline the loop only reads the clock and opens the output; where many nodes
        # share a loop (the simulator), report work would hold the others' starts back
        self.loop.call_when_idle(self.report, job, PlaybackEvent.started, actual, None, "")
        self._poll_later(playing)

    def _still_due(self, job: Job) -> bool:
        """At its deadline timer, by the wall clock: not before its start (the clock went
        back since the timer was armed: it is armed again), and a plan item not past its
        grace (the clock went forward: it is reported skipped, not played an hour late)."""
        now = time.time()
        if now < job.start_at - CLOCK_STEP_S:
            if self._current is None and not self._urgent:
                self.amp.off()  # it may wait long now: not warm for nothing
            return False
        if job.item_id in self._plan_jobs and now > job.start_at + LATE_GRACE_S:
            self._finish_unplayed(job, PlaybackEvent.skipped,
                                  "start time passed: the node's clock was stepped")
            return False
        return True

    def _poll_later(self, playing: Playing) -> None:
        remaining = playing.remaining()
        self._poll_timer = self.loop.call_later(0.1 if remaining is None else remaining,
                                                self._poll)

    def _poll(self) -> None:
        self._poll_timer = None
        running = self._current
        if running is None:
            return
        if not running.playing.done():
            self._poll_later(running.playing)
            return
        error = running.playing.error()
        if error:
            log.error("playback of %s failed: %s", running.job.item_id, error)
            self._ended(running, PlaybackEvent.failed, error)
        elif running.repetition < running.job.repeat:
            running.played_before += running.playing.played()
            running.repetition += 1
            running.playing = self.output.start(
                running.clip, f"{running.job.item_id}-{running.repetition}")
            self._poll_later(running.playing)
        else:
            self._ended(running, PlaybackEvent.finished, "")

    def _stop_current(self, reason: PlaybackEvent) -> bool:
        running = self._current
        if running is None:
            return False
        running.playing.stop()
        self._ended(running, reason, f"after {running.played():.1f} s")
        return True

    def _ended(self, running: Running, event: PlaybackEvent, detail: str) -> None:
        job = running.job
        if self._poll_timer:
            self._poll_timer.cancel()
            self._poll_timer = None
        self._set_state(job.item_id, ItemState.after(event))
        self._current = None
        if not self._urgent:
            self.amp.off()
        self._prepared.pop(job.item_id, None)
        self.report(job, event, running.actual_at, running.played(), detail)
        self.wake()

    def _finish_unplayed(self, job: Job, event: PlaybackEvent, detail: str) -> None:
        self._drop_urgent(job.item_id)
        self._set_state(job.item_id, ItemState.after(event))
        log.info("%s %s: %s", job.item_id, event.value, detail)
        self.report(job, event, time.time(), None, detail)

    def _set_state(self, item_id: str, state: ItemState) -> None:
        """Decisions read the state in memory at once; the store gets it within
        :data:`STATE_WRITE_DELAY_S`, in one transaction with any others (a commit costs
        a millisecond or more, which a burst of starts must not wait for)."""
        self._states[item_id] = state
        self._unwritten[item_id] = state
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(STATE_WRITE_DELAY_S, self.write_states)

    def write_states(self) -> None:
        self._write_timer = None
        if self._unwritten:
            self.store.set_item_states(self._unwritten)
            self._unwritten = {}

    def forget_states(self, keep: set[str], older_than: float) -> None:
        """Drop outcomes of items no plan holds any more (see NodeStore)."""
        for item_id in self.store.forget_item_states(keep, older_than):
            self._states.pop(item_id, None)

    def _is_urgent(self, job: Job) -> bool:
        return job.priority in (Priority.emergency, Priority.live) and (
            job.item_id not in self._plan_jobs)

    def _fail_interrupted(self) -> None:
        """A job that was playing when the node went down is not replayed on restart, and
        a plan item's is reported failed: its "started" went out (from the outbox), its
        end never will, and the controller must not wait for it or count it as aired."""
        for item_id, state in list(self._states.items()):
            if state == ItemState.started:
                self._set_state(item_id, ItemState.failed)
                if job := self._plan_jobs.get(item_id):
                    self.report(job, PlaybackEvent.failed, time.time(), None, INTERRUPTED)
