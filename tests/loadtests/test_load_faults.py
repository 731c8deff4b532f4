"""The fault timeline: scenario fault entries started and stopped on time, always cleaned up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loadtests.faults import FaultApplier, toxic_name
from loadtests.timeline import TimelineCursor, parse_faults
from resilience.scenario.faults import plan


class FakeProxies:
    """Records calls like a Toxiproxy API would see them; can be told to fail."""

    def __init__(self, *, fail_on: str | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.toxics: dict[tuple[str, str], str] = {}
        self.enabled: dict[str, bool] = {}
        self.fail_on = fail_on

    def add_toxic(
        self,
        proxy: str,
        type: str,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: Mapping[str, int] | None = None,
    ) -> None:
        assert name is not None
        self.calls.append(("add", proxy, name, type, stream, toxicity, dict(attributes or {})))
        if self.fail_on == "add":
            raise ConnectionError("proxy API down")
        self.toxics[(proxy, name)] = type

    def remove_toxic(self, proxy: str, name: str) -> None:
        self.calls.append(("remove", proxy, name))
        del self.toxics[(proxy, name)]

    def update_proxy(self, name: str, *, enabled: bool | None = None) -> None:
        assert enabled is not None
        self.calls.append(("enabled", name, enabled))
        self.enabled[name] = enabled


FAULTS = parse_faults(
    [
        {
            "name": "slow-pg",
            "at": "1s",
            "duration": "2s",
            "target": "postgres",
            "toxic": "latency",
            "attributes": {"latency": 200},
        },
        {"name": "pg-down", "at": 4, "duration": 1, "target": "postgres", "action": "disable"},
        {"at": 0.5, "duration": 0.5, "target": "redis", "toxic": "timeout", "every": 2, "times": 2},
        {"name": "redis-gone", "at": 6, "target": "redis", "action": "disable"},
    ]
)


def test_scenario_plan_orders_starts_and_stops_and_names_toxics_per_occurrence() -> None:
    events = [(e.t_s, e.event, toxic_name(e)) for e in plan(FAULTS)]
    assert events == [
        (0.5, "start", "redis-timeout-3-0"),
        (1.0, "stop", "redis-timeout-3-0"),
        (1.0, "start", "slow-pg"),
        (2.5, "start", "redis-timeout-3-1"),
        (3.0, "stop", "slow-pg"),  # equal times: in file order
        (3.0, "stop", "redis-timeout-3-1"),
        (4.0, "start", "pg-down"),
        (5.0, "stop", "pg-down"),
        (6.0, "start", "redis-gone"),
    ]


def test_cursor_hands_out_each_event_once() -> None:
    cursor = TimelineCursor(plan(FAULTS))
    assert [toxic_name(e) for e in cursor.due(0.9)] == ["redis-timeout-3-0"]
    assert cursor.due(0.9) == []
    assert cursor.next_at_s() == 1.0
    assert len(cursor.due(100)) == 8
    assert cursor.done


def test_applier_maps_targets_to_proxies_and_undoes_on_schedule() -> None:
    proxies = FakeProxies()
    applier = FaultApplier(proxies, {"postgres": "pg-proxy", "redis": "redis"})
    for event in plan(FAULTS[:2]):
        applier.handle(event, event.t_s)
    assert proxies.calls == [
        ("add", "pg-proxy", "slow-pg", "latency", "downstream", 1.0, {"latency": 200}),
        ("remove", "pg-proxy", "slow-pg"),
        ("enabled", "pg-proxy", False),
        ("enabled", "pg-proxy", True),
    ]
    assert not applier.active
    assert all(record.ok for record in applier.records)


def test_cleanup_removes_what_is_still_active_when_the_run_stops_early() -> None:
    proxies = FakeProxies()
    applier = FaultApplier(proxies, {"postgres": "postgres", "redis": "redis"})
    cursor = TimelineCursor(plan(FAULTS))
    for event in cursor.due(4.5):  # slow-pg over, pg-down active
        applier.handle(event, 4.5)
    applier.handle(plan(FAULTS[3:])[0], 6.0)  # redis-gone never ends by itself
    assert proxies.enabled == {"postgres": False, "redis": False}
    applier.cleanup()
    assert proxies.enabled == {"postgres": True, "redis": True}
    assert proxies.toxics == {}
    assert not applier.active


def test_a_failing_proxy_call_is_recorded_not_raised() -> None:
    applier = FaultApplier(FakeProxies(fail_on="add"), {})
    applier.handle(plan(FAULTS[:1])[0], 1.0)
    (record,) = applier.records
    assert not record.ok
    assert "proxy API down" in (record.error or "")
