"""The event hub and the supervisor, in memory (no server)."""

from __future__ import annotations

import asyncio
import json

import pytest

from resilience.service.components import Supervisor, UnknownComponent
from resilience.service.error_events import ErrorEvent
from resilience.service.notify import EventHub, HubFull


async def test_5000_subscribers_all_receive_and_a_full_queue_drops_only_its_own() -> None:
    hub = EventHub(queue_size=8, max_subscribers=5000)
    subscriptions = [hub.subscribe() for _ in range(5000)]
    with pytest.raises(HubFull):
        hub.subscribe()
    for i in range(5):
        hub.publish("notice", {"i": i})
    slow = subscriptions[0]
    for i in range(5, 10):  # only the first subscriber stops reading
        for subscription in subscriptions[1:]:
            while not subscription.queue.empty():
                subscription.queue.get_nowait()
        hub.publish("notice", {"i": i})
    received = [json.loads(slow.queue.get_nowait())["i"] for _ in range(slow.queue.qsize())]
    assert received == [2, 3, 4, 5, 6, 7, 8, 9]
    assert slow.dropped == 2
    assert hub.dropped == 2
    assert all(s.dropped == 0 for s in subscriptions[1:])
    assert hub.stats()["refused"] == 1
    hub.unsubscribe(slow)
    assert hub.stats()["subscribers"] == 4999


async def test_a_crashed_loop_is_reported_and_runs_again_after_the_delay() -> None:
    reported: list[ErrorEvent] = []
    supervisor = Supervisor(reported.append, restart_delay_s=0.05)
    runs = 0

    async def loop() -> None:
        nonlocal runs
        runs += 1
        await asyncio.Event().wait()

    supervisor.run("monitor", loop)
    await asyncio.sleep(0.01)
    supervisor.crash("monitor")
    await asyncio.sleep(0.01)
    during = supervisor.states()["monitor"]["status"]
    await asyncio.sleep(0.1)
    with pytest.raises(UnknownComponent):
        supervisor.crash("nothing")
    state = supervisor.states()["monitor"]
    await supervisor.aclose()
    assert during == "recovering"
    assert (state["status"], state["crashes"], runs) == ("running", 1, 2)
    assert [(e.component, e.severity, e.error_type) for e in reported] == [
        ("monitor", "critical", "ComponentCrash")
    ]
    assert reported[0].stack_trace is not None
    assert supervisor.states()["monitor"]["status"] == "stopped"


async def test_a_loop_that_raises_is_restarted_and_a_failure_streak_reports_once() -> None:
    reported: list[ErrorEvent] = []
    supervisor = Supervisor(reported.append, restart_delay_s=0.01)
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database away")
        await asyncio.Event().wait()

    supervisor.run("outbox", flaky)
    await asyncio.sleep(0.1)
    for _ in range(3):
        supervisor.failure("analytics", OSError("write refused"))
    failing = supervisor.states()["analytics"]["status"]
    supervisor.success("analytics")
    await supervisor.aclose()
    assert calls == 2
    assert [(e.component, e.error_type) for e in reported] == [
        ("outbox", "ConnectionError"),
        ("analytics", "OSError"),
    ]
    assert failing == "failing"
    assert supervisor.states()["analytics"]["failures"] == 3
