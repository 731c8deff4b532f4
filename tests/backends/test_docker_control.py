"""Process faults on Docker containers, on a stand-in for the Docker SDK's container.

Runs without an engine: the stand-in records the SDK calls and keeps the
status a real container would report, so the order of calls (and that
everything is undone) is what is tested; on a real engine, see
test_docker_process_faults.py.
"""

from __future__ import annotations

from typing import Any

from resilience.backends.docker_control import DockerServerControl


class SdkContainer:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name, self.status = log, name, "running"

    def reload(self) -> None:
        pass

    def pause(self) -> None:
        self.log.append(f"pause {self.name}")
        self.status = "paused"

    def unpause(self) -> None:
        self.log.append(f"unpause {self.name}")
        self.status = "running"

    def kill(self) -> None:
        self.log.append(f"kill {self.name}")
        self.status = "exited"

    def stop(self, timeout: int) -> None:
        self.log.append(f"stop {self.name}")
        self.status = "exited"

    def start(self) -> None:
        self.log.append(f"start {self.name}")
        self.status = "running"

    def logs(self, tail: int) -> bytes:
        return b""

    def exec_run(self, cmd: list[str]) -> Any:
        self.log.append(f"exec {self.name} {' '.join(cmd)}")


class Handle:
    def __init__(self, sdk: SdkContainer) -> None:
        self.sdk = sdk

    def get_wrapped_container(self) -> SdkContainer:
        return self.sdk


def _control() -> tuple[DockerServerControl, list[str], dict[str, SdkContainer]]:
    log: list[str] = []
    sdks = {name: SdkContainer(log, name) for name in ("postgres", "redis")}
    control = DockerServerControl({n: Handle(s) for n, s in sdks.items()})
    return control, log, sdks


def test_pause_is_docker_pause_and_resume_all_unpauses_only_paused_containers() -> None:
    control, log, sdks = _control()
    control.pause("postgres")
    control.resume_all()
    assert log == ["pause postgres", "unpause postgres"]
    assert {s.status for s in sdks.values()} == {"running"}


def test_a_cold_redis_restart_is_a_plain_stop_and_removes_what_a_warm_one_saved() -> None:
    control, log, _ = _control()
    control.stop("redis")
    control.start("redis")
    control.stop("redis", keep_data=True)
    control.start("redis")
    control.stop("redis")
    assert log == [
        "stop redis",
        "start redis",
        "exec redis redis-cli -p 6379 SAVE",
        "stop redis",
        "start redis",
        "exec redis rm -f /data/dump.rdb",
        "stop redis",
    ]


def test_a_killed_paused_container_is_unpaused_killed_then_started_again() -> None:
    control, log, sdks = _control()
    control.pause("postgres")
    control.kill("postgres")
    control.start("postgres")
    assert log == ["pause postgres", "unpause postgres", "kill postgres", "start postgres"]
    assert sdks["postgres"].status == "running"
