"""The node's local scheduler: fires plan items at their absolute time, from its own store.

Nothing here waits for the network. The plan and the media are already on the node; the
scheduler picks the most urgent due job, decodes it ahead of the deadline, waits out the
last milliseconds precisely, and plays. Priorities decide clashes (DESIGN.md, principle
5): a higher priority preempts a lower one; an equal or lower one waits its turn; quiet
hours skip ordinary items and reminders, never emergencies.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.amplifier import Amplifier
from edge.audio_output import AudioOutput, PreparedClip
from edge.media_cache import MediaCache
from edge.store import FINAL_STATES, NodeStore
from mqtt_contract import PRIORITY_RANK, MediaRef, Plan, PlaybackEvent, Priority, QuietWindow

log = logging.getLogger(__name__)

STARTED_REPORT_DELAY_S = 0.05
"""The "started" report (built, stored, published) goes out just after the start, not on
it: on the deadline the play thread only reads the clock and opens the output. Where
many agents share one interpreter (the simulator), report work at the deadline would hold
the others' start back."""
LATE_GRACE_S = 30.0
"""A job whose start passed by more than this is reported missed instead of played late."""


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
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    reason: PlaybackEvent = PlaybackEvent.preempted


Report = Callable[[Job, PlaybackEvent, float, float | None, str], None]




def sleep_until(deadline: float) -> None:
    """Sleep until the wall clock reaches ``deadline``.

    No busy-wait: Linux wakes a sleeping thread within about 0.1 ms (hrtimers), while a
    Python thread spinning for the last milliseconds holds the GIL in 5 ms slices, which
    delays every other thread of the process; with many agents in one process (the
    simulator) spinning made starts seconds late. Sleeps are cut to 50 ms so a wall clock
    stepped by NTP is noticed.
    """
    while (remaining := deadline - time.time()) > 0:
        time.sleep(min(remaining, 0.05))


class LocalScheduler:
    def __init__(self, store: NodeStore, cache: MediaCache, output: AudioOutput,
                 amplifier: Amplifier, report: Report, request_media: Callable[[MediaRef], None],
                 volume: Callable[[], int], quiet_hours: QuietWindow, timezone: str,
                 prepare_ahead_s: float, work_dir: Path) -> None:
        self.store, self.cache, self.output, self.amp = store, cache, output, amplifier
        self.report, self.request_media, self.volume = report, request_media, volume
        self.quiet_hours, self.tz = quiet_hours, ZoneInfo(timezone)
        self.prepare_ahead_s, self.work_dir = prepare_ahead_s, work_dir
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._plan_jobs: dict[str, Job] = {}
        self._urgent: list[Job] = []
        self._prepared: dict[str, PreparedClip] = {}
        self._current: Running | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # inputs from the agent -------------------------------------------------------
    def set_plan(self, plan: Plan | None) -> None:
        if plan and plan.quiet_hours:
            self.quiet_hours = plan.quiet_hours
        with self._lock:
            self._plan_jobs = Job.from_plan(plan) if plan else {}
            current = self._current
            if current and current.job.item_id not in self._plan_jobs and not self._is_urgent(
                current.job
            ):
                self._stop_current(PlaybackEvent.stopped)  # cancelled while playing
        self.wake()

    def submit(self, job: Job) -> None:
        """Play a job as soon as its priority allows (emergency/live commands)."""
        if self.store.item_state(job.item_id):
            return  # a replayed command: already handled
        self.store.set_item_state(job.item_id, "queued")
        with self._lock:
            self._urgent.append(job)
        self.wake()

    def stop_playback(self) -> bool:
        """The stop command: end what plays now and drop queued commands."""
        with self._lock:
            for job in self._urgent:
                self.store.set_item_state(job.item_id, "stopped")
            self._urgent.clear()
            return self._stop_current(PlaybackEvent.stopped)

    def now_playing(self) -> Job | None:
        current = self._current
        return current.job if current else None

    def wake(self) -> None:
        self._wake.set()

    # thread ---------------------------------------------------------------------------
    def start(self) -> None:
        self._fail_interrupted()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop playing and wait for the player, so its last report is written first."""
        self._stopping.set()
        current = self._current
        self.stop_playback()
        self.wake()
        if self._thread:
            self._thread.join(timeout=5)
        if current and current.thread:
            current.thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                timeout = self._tick(time.time())
            except Exception:  # the scheduler must outlive any one bad job
                log.exception("scheduler tick failed")
                timeout = 1.0
            self._wake.wait(max(0.0, min(timeout, 1.0)))
            self._wake.clear()

    # decisions ----------------------------------------------------------------------
    def _tick(self, now: float) -> float:
        """Do what is due now; return how long until there may be something to do."""
        self._skip_missed(now)
        job = self._next_job(now)
        if job is None:
            return self._until_next_prepare(now)
        return self._handle(job, now)

    def _next_job(self, now: float) -> Job | None:
        with self._lock:
            due = [j for j in self._urgent if self._open(j)] + [
                j for j in self._plan_jobs.values()
                if j.start_at <= now + self.prepare_ahead_s and self._open(j)
            ]
        if not due:
            return None
        return min(due, key=lambda j: (-j.rank, j.start_at))

    def _open(self, job: Job) -> bool:
        """Neither playing nor done. An emergency arrives twice, as a command and as a plan
        item with the same id; whichever starts, the other must not play it again."""
        return self.store.item_state(job.item_id) not in (*FINAL_STATES, "started")

    def _drop_urgent(self, item_id: str) -> None:
        """Forget queued commands for ``item_id`` (call with the lock held)."""
        self._urgent[:] = [j for j in self._urgent if j.item_id != item_id]

    def _handle(self, job: Job, now: float) -> float:
        media = self.cache.path(job.media.sha256)
        if media is None:
            self.request_media(job.media)
            return 0.5
        if self._blocked_by_quiet_hours(job):
            self._finish_unplayed(job, PlaybackEvent.skipped, "quiet hours")
            return 0.0
        current = self._current
        if current and current.job.rank >= job.rank:
            return 0.2  # wait for the current item to end
        clip = self._prepare(job, media)
        if job.start_at - time.time() > 1.0:
            return job.start_at - time.time() - 0.5
        self.amp.on()
        if current:  # preempt on the deadline, not before: the current item plays till then
            sleep_until(job.start_at)
            self._stop_current(PlaybackEvent.preempted)
            current.thread and current.thread.join(timeout=5)
        self._start(job, clip)  # the play thread itself waits for the deadline
        return 0.0

    def _prepare(self, job: Job, media: Path) -> PreparedClip:
        clip = self._prepared.get(job.item_id)
        if clip is None:
            volume = job.volume if job.volume is not None else self.volume()
            clip = self.output.prepare(media, volume, self.work_dir)
            self._prepared[job.item_id] = clip
        return clip

    def _blocked_by_quiet_hours(self, job: Job) -> bool:
        if job.priority != Priority.ordinary or job.ignore_quiet_hours:
            return False  # quiet hours hold back ordinary items and reminders only
        local = datetime.fromtimestamp(max(job.start_at, time.time()), self.tz).time()
        return self.quiet_hours.contains(local)

    def _skip_missed(self, now: float) -> None:
        with self._lock:
            missed = [j for j in self._plan_jobs.values()
                      if j.start_at + LATE_GRACE_S < now and not self.store.item_state(j.item_id)]
        for job in missed:
            reason = "media not received in time" if not self.cache.has(job.media.sha256) else (
                "start time passed while the node was busy or down")
            self._finish_unplayed(job, PlaybackEvent.failed if "media" in reason
                                  else PlaybackEvent.skipped, reason)

    def _until_next_prepare(self, now: float) -> float:
        with self._lock:
            starts = [j.start_at for j in self._plan_jobs.values()
                      if not self.store.item_state(j.item_id)]
        return min(starts) - self.prepare_ahead_s - now if starts else 1.0

    # playing ------------------------------------------------------------------------
    def _start(self, job: Job, clip: PreparedClip) -> None:
        running = Running(job)
        with self._lock:
            self._drop_urgent(job.item_id)
            self._current = running
        self.store.set_item_state(job.item_id, "started")
        running.thread = threading.Thread(target=self._play, args=(running, clip),
                                          name=f"play-{job.item_id[:12]}", daemon=True)
        running.thread.start()

    def _play(self, running: Running, clip: PreparedClip) -> None:
        """Wait for the deadline, play, report.

        Everything slow (decoding, the store's write, starting this thread) is done before
        the deadline, so on it the thread only wakes up and starts the output: that is
        what keeps the nodes of a zone within milliseconds of one another.
        """
        job = running.job
        if not self._wait_for_start(running):
            self._ended(running, running.reason, time.time(), 0.0, "before its start time")
            return
        actual = time.time()
        started = threading.Timer(STARTED_REPORT_DELAY_S, self.report,
                                  (job, PlaybackEvent.started, actual, None, ""))
        started.daemon = True
        started.start()
        played, event, detail = 0.0, PlaybackEvent.finished, ""
        try:
            for n in range(job.repeat):
                played += self.output.play(clip, f"{job.item_id}-{n + 1}", running.stop)
                if running.stop.is_set():
                    event, detail = running.reason, f"after {played:.1f} s"
                    break
        except Exception as exc:
            log.exception("playback of %s failed", job.item_id)
            event, detail = PlaybackEvent.failed, str(exc)[:300]
        self._ended(running, event, actual, played, detail)

    @staticmethod
    def _wait_for_start(running: Running) -> bool:
        """Sleep until the job's start; False if it was stopped or preempted meanwhile."""
        while (remaining := running.job.start_at - time.time()) > 0:
            if running.stop.wait(min(remaining, 0.05)):
                return False
        return not running.stop.is_set()

    def _ended(self, running: Running, event: PlaybackEvent, actual: float,
               played: float, detail: str) -> None:
        job = running.job
        self.store.set_item_state(job.item_id, event.value)
        with self._lock:
            if self._current is running:
                self._current = None
            idle = not self._urgent
        if idle:
            self.amp.off()
        self._prepared.pop(job.item_id, None)
        self.report(job, event, actual, played, detail)
        self.wake()

    def _stop_current(self, reason: PlaybackEvent) -> bool:
        current = self._current
        if current is None:
            return False
        current.reason = reason
        current.stop.set()
        return True

    def _finish_unplayed(self, job: Job, event: PlaybackEvent, detail: str) -> None:
        with self._lock:
            self._drop_urgent(job.item_id)
        self.store.set_item_state(job.item_id, event.value)
        log.info("%s %s: %s", job.item_id, event.value, detail)
        self.report(job, event, time.time(), None, detail)

    def _is_urgent(self, job: Job) -> bool:
        return job.priority in (Priority.emergency, Priority.live) and (
            job.item_id not in self._plan_jobs)

    def _fail_interrupted(self) -> None:
        """A job that was playing when the node went down is not replayed on restart."""
        plan = self.store.load_plan()
        for item in plan.items if plan else []:
            if self.store.item_state(item.id) == "started":
                self.store.set_item_state(item.id, PlaybackEvent.failed.value)
