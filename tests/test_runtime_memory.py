"""The runtime's own state is bounded, and deferred work goes through its one scheduler."""

from __future__ import annotations

import asyncio
import threading

from controller.runtime import RecentResends, Runtime
from controller.services.alerts import AlertHub


def test_resend_memory_keeps_the_cooldown_and_evicts_the_oldest():
    memory = RecentResends(cooldown_s=2.0, capacity=3)
    assert memory.claim(("n1", "a"), now=0.0)
    assert not memory.claim(("n1", "a"), now=1.0)  # asked again within the cooldown
    assert memory.claim(("n1", "a"), now=2.5)
    for i, key in enumerate([("n2", "a"), ("n3", "a"), ("n4", "a")]):
        assert memory.claim(key, now=3.0 + i)
    assert len(memory) == 3  # ("n1", "a") was the oldest: evicted
    assert memory.claim(("n1", "a"), now=6.0)  # forgotten, so allowed again
    assert not memory.claim(("n4", "a"), now=6.0)


def test_alert_hub_caps_its_desks_and_drops_the_oldest():
    async def run() -> None:
        hub = AlertHub(capacity=2)
        subs = [hub.subscribe() for _ in range(3)]
        assert hub.subscribers == 2 and hub.evicted == 1
        assert subs[0].overflowed  # the dropped desk falls back to polling the database
        hub.publish("alert", {"row": 1})
        await asyncio.sleep(0.01)
        assert subs[0].queue.empty()
        assert [s.queue.get_nowait().data for s in subs[1:]] == [{"row": 1}] * 2

    run_on_own_loop(run)


def run_on_own_loop(coroutine) -> None:  # type: ignore[no-untyped-def]
    """``asyncio.run`` in a thread of its own: the browser tests leave Playwright's loop
    running on the main thread, where a second loop cannot start."""
    failures: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coroutine())
        except BaseException as exc:  # handed to the test
            failures.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    if failures:
        raise failures[0]


def test_deferred_plans_and_reconnects_are_scheduler_jobs_not_threads(tmp_path):
    from controller.domain import Targets
    from controller.services.effects import Effects
    from controller.settings import Settings

    runtime = Runtime(Settings(data_dir=tmp_path))
    runtime.scheduler.start(paused=True)  # jobs are queued, none runs
    try:
        threads = threading.active_count()
        later = Effects().plans(Targets(zones=["thon-1"]), later=True)
        runtime.apply(later)  # an emergency's plans: after its command
        for _ in range(3):  # a flapping link: one pending republish, however many connects
            runtime._republish_after_connect()
        jobs = runtime.scheduler.get_jobs()
        assert threading.active_count() == threads
        assert sorted(j.id == "republish" for j in jobs) == [False, True]
        deferred = next(j for j in jobs if j.id != "republish")
        assert deferred.args == ([Targets(zones=["thon-1"])], runtime.plan_log.now())
    finally:
        runtime.scheduler.shutdown(wait=False)
        runtime.db.dispose()


def test_a_deferred_plan_publish_is_dropped_once_its_targets_went_out_again():
    from controller.domain import Targets
    from controller.runtime import PlanLog

    plans = PlanLog()
    village, school = Targets.of(zones=["thon-1"]), Targets.of(nodes=["node-3"])
    queued = plans.now()  # an emergency to thon-1 queues its safety-net plans
    assert not plans.published_since([village], queued)
    plans.mark([school])  # someone else's plans: not the same targets
    assert not plans.published_since([village], queued)
    assert not plans.published_since([village, school], queued)
    plans.mark([village])  # the stop republished thon-1
    assert plans.published_since([village], queued)
    assert not plans.published_since(None, queued)  # "every node" is not covered by one
    later = plans.now()
    plans.mark(None)  # the horizon roll: every plan
    assert plans.published_since([village, school], later)
    assert plans.published_since(None, later)
