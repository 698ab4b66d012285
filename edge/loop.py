"""The node's one event loop: sockets, timers and hand-offs from other threads.

A node's parts (plan, media, commands, outbox, telemetry, scheduler) never block and own
no thread: they run on this loop, one callback at a time, so they need no locks. What
must block (decoding a clip with ffmpeg, a TCP/TLS connect, rendering a reminder) runs
in the loop's small worker pool and its result comes back as a callback. Camera threads
hand their alerts over with :meth:`Reactor.call_soon_threadsafe`.

One loop drives one agent on a Pi, or hundreds of agents in one simulator process: it is
the same code either way (epoll watches any number of sockets, where paho's own threaded
loop costs two threads and a ``select()`` per client).
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

MAX_SLEEP_S = 1.0
"""The loop wakes at least this often, so a wall clock stepped by NTP is noticed."""
IDLE_MAX_DELAY_S = 1.0
"""Work queued for a quiet moment (:meth:`Reactor.call_when_idle`) waits at most this
long, however busy the loop stays."""


class Timer:
    """A scheduled callback; :meth:`cancel` makes it a no-op."""

    __slots__ = ("when", "fn", "args", "cancelled")

    def __init__(self, when: float, fn: Callable[..., Any], args: tuple) -> None:
        self.when, self.fn, self.args, self.cancelled = when, fn, args, False

    def cancel(self) -> None:
        self.cancelled = True


class Reactor:
    def __init__(self, name: str = "loaxa-loop", workers: int = 2) -> None:
        self.name = name
        self._selector = selectors.DefaultSelector()
        self._timers: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self._handoffs: collections.deque[tuple[Callable[..., Any], tuple]] = collections.deque()
        self._idle: collections.deque[tuple[float, Callable[..., Any], tuple]] = (
            collections.deque())
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, (self._drain_wake, None))
        self._executor = ThreadPoolExecutor(max_workers=workers,
                                            thread_name_prefix=f"{name}-work")
        self._thread: threading.Thread | None = None
        self._running = False
        self._joined: dict[Hashable, list[Callable[[Any, BaseException | None], None]]] = {}
        """Blocking jobs running under a key -> the ``done`` callbacks waiting for them."""

    # time ---------------------------------------------------------------------------
    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Timer:
        return self.call_at(time.monotonic() + max(0.0, delay), fn, *args)

    def call_at(self, when: float, fn: Callable[..., Any], *args: Any) -> Timer:
        """Run ``fn(*args)`` on the loop at monotonic time ``when`` (loop thread only)."""
        timer = Timer(when, fn, args)
        heapq.heappush(self._timers, (when, next(self._order), timer))
        return timer

    def call_at_wall(self, epoch: float, fn: Callable[..., Any], *args: Any) -> Timer:
        """Run at the wall-clock instant ``epoch`` (plan items are absolute times)."""
        return self.call_later(epoch - time.time(), fn, *args)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` once the current burst of events is handled (loop only)."""
        self._handoffs.append((fn, args))

    def call_when_idle(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` once no socket has anything to read (or after
        :data:`IDLE_MAX_DELAY_S`), loop thread only. For work that may wait a moment
        (reports after a start): on a Pi that is at once; where many agents share one loop
        (the simulator), the other nodes' commands are read and started first, as each
        would be on its own CPU."""
        self._idle.append((time.monotonic() + IDLE_MAX_DELAY_S, fn, args))

    # other threads ------------------------------------------------------------------
    def call_soon_threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
        self._handoffs.append((fn, args))
        # a full pipe will be drained by the loop; a closed one means it is stopping
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"\0")

    def run_blocking(self, fn: Callable[[], Any],
                     done: Callable[[Any, BaseException | None], None],
                     key: Hashable | None = None) -> None:
        """Run ``fn`` in the worker pool; ``done(result, error)`` then runs on the loop.

        With ``key`` (loop thread only), a job already running under the same key is not
        started again: ``done`` waits for that one, and every waiting ``done`` runs in the
        same hand-off. Simulated nodes sharing one decoded clip then cost one trip to a
        worker thread, not one each: every trip back is a GIL switch (up to 5 ms) that
        the loop, busy with the other nodes, makes the worker wait for."""
        if key is not None:
            if key in self._joined:
                self._joined[key].append(done)
                return
            self._joined[key] = [done]
            done = self._finisher(key)

        def finished(future: Future) -> None:
            if future.cancelled():  # the loop is stopping
                return
            error = future.exception()
            self.call_soon_threadsafe(done, None if error else future.result(), error)

        self._executor.submit(fn).add_done_callback(finished)

    def _finisher(self, key: Hashable) -> Callable[[Any, BaseException | None], None]:
        def finish(result: Any, error: BaseException | None) -> None:
            for waiting in self._joined.pop(key, []):
                self._guarded(waiting, result, error)
        return finish

    # sockets ------------------------------------------------------------------------
    def watch(self, sock: Any, on_read: Callable[[], None],
              on_write: Callable[[], None] | None = None) -> None:
        """Call ``on_read`` when ``sock`` is readable, ``on_write`` (if given) writable."""
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if on_write else 0)
        try:
            self._selector.modify(sock, events, (on_read, on_write))
        except KeyError:
            self._selector.register(sock, events, (on_read, on_write))

    def unwatch(self, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)

    # running ------------------------------------------------------------------------
    def in_loop(self) -> bool:
        return threading.current_thread() is self._thread

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._running = False
        self.call_soon_threadsafe(lambda: None)
        if self._thread and not self.in_loop():
            self._thread.join(timeout)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def run_in_loop(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run ``fn`` on the loop and wait for its result (for callers on other threads)."""
        if self.in_loop() or not self._running:
            return fn()
        future: Future = Future()

        def call() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)

        self.call_soon_threadsafe(call)
        return future.result(timeout)

    def _run(self) -> None:
        while self._running:
            self._run_once()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _run_once(self) -> None:
        timeout = MAX_SLEEP_S
        if self._timers:
            timeout = min(timeout, max(0.0, self._timers[0][0] - time.monotonic()))
        if self._handoffs or self._idle:
            timeout = 0.0
        events = self._selector.select(timeout)
        for key, mask in events:
            on_read, on_write = key.data
            if mask & selectors.EVENT_READ:
                self._guarded(on_read)
            if mask & selectors.EVENT_WRITE and on_write:
                self._guarded(on_write)
            self._run_due_timers()  # a deadline does not wait for a burst of messages
        while self._handoffs:
            fn, args = self._handoffs.popleft()
            self._guarded(fn, *args)
        self._run_due_timers()
        if self._idle:
            self._run_idle(quiet=not events)

    def _run_idle(self, quiet: bool) -> None:
        """When the sockets were quiet, everything queued for a quiet moment; otherwise
        only what has waited its longest."""
        now = time.monotonic()
        for _ in range(len(self._idle)):
            deadline, fn, args = self._idle[0]
            if not quiet and deadline > now:
                return
            self._idle.popleft()
            self._guarded(fn, *args)

    def _run_due_timers(self) -> None:
        """Run the timers that are due, in order; those they add for now run too."""
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            timer = heapq.heappop(self._timers)[2]
            if not timer.cancelled:
                self._guarded(timer.fn, *timer.args)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    @staticmethod
    def _guarded(fn: Callable[..., Any], *args: Any) -> None:
        """One failing callback must not stop the loop (nor the other nodes on it)."""
        try:
            fn(*args)
        except Exception:
            log.exception("a callback on the event loop failed")
