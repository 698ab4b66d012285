"""A heartbeat that cannot be built once (a camera's stats raised, say) must not end the
node's telemetry until a restart: the next tick is armed whatever happened."""

from __future__ import annotations

from tests.conftest import wait_for


def test_telemetry_goes_on_after_a_tick_that_failed(start_node) -> None:  # type: ignore[no-untyped-def]
    agent = start_node("node-1", telemetry_interval_s=0.2)
    wait_for(lambda: agent.connected.is_set(), 10, what="node-1 connected")
    calls: list[bool] = []
    publish = agent.publish_telemetry

    def flaky() -> None:
        calls.append(True)
        if len(calls) == 1:
            raise ValueError("cpu_temperature: a sensor returned nan")
        publish()

    agent.publish_telemetry = flaky  # type: ignore[method-assign]
    wait_for(lambda: len(calls) >= 3, 5, what="telemetry ticks after the failed one")
