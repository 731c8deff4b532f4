"""The local backend: PostgreSQL, Redis, the booking API stub and the proxy server
as child processes.

Start-up is parallel: the proxy server and Redis are spawned first (they need
nothing), PostgreSQL's data dir is copied from the template meanwhile, then
three threads wait on real readiness (a query answered, PING answered, the
proxy API up) while the proxies are created as soon as the API answers. The
last check goes *through* the proxies.

Every server is registered with a :class:`~resilience.backends.watchdog.Watchdog`
started with the environment: if the harness dies (SIGKILL included), its
reaper process stops the servers and deletes the environment's files within
a few seconds.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from resilience.backends.binaries import find_postgres, find_redis_server, find_toxiproxy_server
from resilience.backends.booking_api import BOOKING_PROXY, LocalBookingApi
from resilience.backends.config import EnvironmentConfig, EnvironmentURLs
from resilience.backends.errors import BackendError
from resilience.backends.postgres import (
    LocalPostgres,
    postgres_answers,
    remove_orphan_shared_memory,
    unprivileged_account,
)
from resilience.backends.process import ManagedProcess, signals_deferred
from resilience.backends.proxies import LocalProxyServer, ensure_proxy
from resilience.backends.readiness import free_port, redis_ping, wait_until
from resilience.backends.redis import LocalRedis
from resilience.backends.server_control import LocalServerControl
from resilience.backends.state import EnvironmentMarker, ProcessRecord, StateDir
from resilience.backends.watchdog import Watchdog

__all__ = ["PORT_RACE_RETRIES", "LocalBackend", "StartupTimings", "lost_port_race"]

PORT_RACE_RETRIES = 2
"""Starts again after a lost port race. Ports are picked free and bound a moment
later by another process (a server, a proxy listener), so an environment started
alongside others (``pytest -n``, ``tune --confirm-jobs``) or any program opening
connections meanwhile can take one first."""


def lost_port_race(error: BaseException) -> bool:
    """Whether a start failed because a port picked as free was taken before its bind
    (PostgreSQL, Redis, Python and Go all say "address already in use")."""
    return "address already in use" in str(error).lower()


@dataclass(slots=True)
class StartupTimings:
    """Seconds spent in each start-up phase (for the benchmark and for logs)."""

    phases_s: dict[str, float] = field(default_factory=dict)
    total_s: float = 0.0


class LocalBackend:
    """Throwaway servers on free 127.0.0.1 ports, files under the state dir."""

    name = "local"

    def __init__(self, config: EnvironmentConfig | None = None) -> None:
        self.config = config or EnvironmentConfig()
        self.marker: EnvironmentMarker | None = None
        self.postgres: LocalPostgres | None = None
        self.redis: LocalRedis | None = None
        self.proxy_server: LocalProxyServer | None = None
        self.booking_api: LocalBookingApi | None = None
        self.watchdog: Watchdog | None = None
        self.timings = StartupTimings()
        self._purpose = "environment"

    def set_purpose(self, purpose: str) -> None:
        """Say what owns this environment (``up``, ``run``, ...), for ``resilience down``."""
        self._purpose = purpose
        if self.marker is not None:
            self.marker.info["purpose"] = purpose
            self.marker.save()

    def _record(self, process: ManagedProcess) -> None:
        assert self.marker is not None
        self.marker.add_process(
            ProcessRecord(process.name, process.pid, process.start_time, process.stop_signal)
        )

    def record_process(self, process: ManagedProcess) -> None:
        """Add a (re)started server to the environment's marker."""
        self._record(process)

    def respawn(self, server: LocalPostgres | LocalRedis) -> ManagedProcess:
        """Start ``server`` again (same port and files) after a kill or stop."""
        old = server.process
        if old is not None and self.watchdog is not None:
            with contextlib.suppress(Exception):
                self.watchdog.unregister(old.pid)
        process = server.spawn(self.watchdog)
        self._record(process)
        return process

    def server_control(self) -> LocalServerControl:
        """Pause, resume, kill and restart this environment's servers."""
        return LocalServerControl(self)

    def start(self) -> EnvironmentURLs:
        """Start every server; a start that lost a port race is started again on new ports."""
        started = time.monotonic()
        for attempt in range(PORT_RACE_RETRIES + 1):
            try:
                urls = self._start()
                break
            except BackendError as exc:
                self.stop()
                if attempt == PORT_RACE_RETRIES or not lost_port_race(exc):
                    raise
            except BaseException:
                self.stop()
                raise
        self.timings.total_s = time.monotonic() - started
        return urls

    def _start(self) -> EnvironmentURLs:
        cfg = self.config
        phases = self.timings.phases_s
        t0 = time.monotonic()
        # Find every binary before starting anything: a missing one is a clear error.
        pg_binaries = find_postgres(cfg.pg_bin)
        redis_server, _ = find_redis_server(cfg.redis_server)
        proxy_command = find_toxiproxy_server(cfg.toxiproxy_server)
        state = StateDir(cfg.state_dir)
        state.reap()
        run_as = unprivileged_account()
        if run_as is not None:
            remove_orphan_shared_memory(run_as)
        self.marker = marker = state.new_environment()
        self.watchdog = watchdog = Watchdog.start(log_path=marker.directory / "reaper.log")
        watchdog.remove_on_reap(marker.directory)
        marker.info.update(purpose=self._purpose, reaper_pid=watchdog.pid, reaper_tag=watchdog.tag)
        marker.save()
        phases["find_and_reap"] = time.monotonic() - t0

        # Each spawn and its record happen with Ctrl-C held back (see signals_deferred),
        # so an interrupted start never leaves a server that stop() does not know.
        self.proxy_server = LocalProxyServer(proxy_command, directory=marker.directory / "proxy")
        with signals_deferred():
            self._record(self.proxy_server.spawn(watchdog))
        self.redis = LocalRedis(redis_server, directory=marker.directory / "redis")
        with signals_deferred():
            self._record(self.redis.spawn(watchdog))
        self.booking_api = LocalBookingApi(directory=marker.directory / "booking-api")
        with signals_deferred():
            self._record(self.booking_api.spawn(watchdog))
        t1 = time.monotonic()
        self.postgres = LocalPostgres(
            pg_binaries,
            directory=marker.directory / "postgres",
            run_as=run_as,
            template_cache=state.cache if cfg.pg_template_cache else None,
            settings=cfg.pg_settings,
        )
        self.postgres.prepare()
        phases["postgres_data_dir"] = time.monotonic() - t1
        with signals_deferred():
            self._record(self.postgres.spawn(watchdog))

        timeout_s = cfg.startup_timeout_s
        pg_listen = f"127.0.0.1:{free_port()}"
        redis_listen = f"127.0.0.1:{free_port()}"
        booking_listen = f"127.0.0.1:{free_port()}"
        postgres, redis, proxy_server = self.postgres, self.redis, self.proxy_server
        booking_api = self.booking_api

        cancel = threading.Event()

        def proxies_ready() -> tuple[tuple[str, int], tuple[str, int]]:
            wait_until(
                "the proxy server",
                proxy_server.probe,
                timeout_s=timeout_s,
                process=proxy_server.process,
                cancel=cancel,
            )
            api = proxy_server.api_url
            ensure_proxy(
                api, BOOKING_PROXY, upstream=f"127.0.0.1:{booking_api.port}", listen=booking_listen
            )
            return (
                ensure_proxy(
                    api, "postgres", upstream=f"127.0.0.1:{postgres.port}", listen=pg_listen
                ),
                ensure_proxy(api, "redis", upstream=f"127.0.0.1:{redis.port}", listen=redis_listen),
            )

        t2 = time.monotonic()
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="resilience-ready") as pool:
            try:
                proxies = pool.submit(proxies_ready)
                redis_wait = pool.submit(
                    wait_until,
                    "redis-server",
                    redis.probe,
                    timeout_s=timeout_s,
                    process=redis.process,
                    cancel=cancel,
                )
                pg_wait = pool.submit(
                    wait_until,
                    "postgres",
                    postgres.probe,
                    timeout_s=timeout_s,
                    process=postgres.process,
                    cancel=cancel,
                )
                booking_wait = pool.submit(
                    wait_until,
                    "the booking API stub",
                    booking_api.probe,
                    timeout_s=timeout_s,
                    process=booking_api.process,
                    cancel=cancel,
                )
                phases["postgres_ready"] = pg_wait.result()
                phases["booking_api_ready"] = booking_wait.result()
                phases["redis_ready"] = redis_wait.result()
                (pg_host, pg_port), (redis_host, redis_port) = proxies.result()
            except BaseException:
                # Ctrl-C or one server failed: the other waits end now, not at their timeout.
                cancel.set()
                raise
        phases["wait_ready"] = time.monotonic() - t2

        urls = EnvironmentURLs(
            postgres=postgres.dsn.replace(f"127.0.0.1:{postgres.port}", f"{pg_host}:{pg_port}"),
            redis=f"redis://{redis_host}:{redis_port}/0",
            postgres_direct=postgres.dsn,
            redis_direct=redis.url,
            toxiproxy_api=proxy_server.api_url,
            booking_api=f"http://{booking_listen}",
            booking_api_direct=booking_api.url,
        )
        # The end-to-end check: both servers answer through their proxies.
        t3 = time.monotonic()
        wait_until(
            "postgres through the proxy",
            lambda: postgres_answers(urls.postgres),
            timeout_s=timeout_s,
        )
        wait_until(
            "redis through the proxy",
            lambda: redis_ping(redis_host, redis_port),
            timeout_s=timeout_s,
        )
        phases["through_proxies"] = time.monotonic() - t3
        marker.info.update(urls.as_dict())
        marker.save()
        return urls

    def stop(self) -> None:
        """Stop every server (each even if stopping another failed), then delete the files."""
        first_error: BaseException | None = None
        # The proxy first, so clients see a clean cut rather than half-dead servers.
        for server in (self.proxy_server, self.postgres, self.redis, self.booking_api):
            if server is None:
                continue
            try:
                server.stop()
            except BaseException as exc:  # re-raised below, after the rest is stopped
                first_error = first_error or exc
        if self.marker is not None:
            shutil.rmtree(self.marker.directory, ignore_errors=True)
            self.marker = None
        if self.watchdog is not None:
            # Nothing is left for it to reap, unless a stop above failed.
            self.watchdog.close()
            self.watchdog = None
        if first_error is not None:
            raise first_error
