"""One object for the whole environment: PostgreSQL, Redis and their fault proxies.

::

    with Environment() as env:                 # or: async with Environment() as env:
        env.urls.postgres                      # through the "postgres" proxy
        env.urls.redis_direct                  # bypassing the proxy
        env.toxiproxy.add_toxic("postgres", ...)

Backend choice: an explicit ``backend`` argument other than ``"auto"`` wins,
then ``config.backend`` (``RESILIENCE_BACKEND``); ``auto`` picks ``docker``
when a Docker engine answers and has the configured images, and ``local``
otherwise (with a one-line notice on stderr when an engine answers but lacks
an image: ``auto`` never pulls).

Teardown runs on normal exit, exceptions, Ctrl-C and - for an environment
started in the main thread - SIGTERM (turned into ``SystemExit``), and at
interpreter exit for one never stopped. A SIGKILLed harness is reaped by the
next start (see :mod:`resilience.backends.state`).
"""

from __future__ import annotations

import asyncio
import atexit
import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, cast

from resilience.backends.base import Backend
from resilience.backends.config import BACKENDS, EnvironmentConfig, EnvironmentURLs
from resilience.backends.errors import ConfigurationError
from resilience.backends.server_control import ServerControl, ServerControlUnavailable

if TYPE_CHECKING:
    from resilience.proxy.client import ToxiproxyClient

__all__ = ["Environment", "make_backend", "resolve_backend_name"]


def resolve_backend_name(backend: str, config: EnvironmentConfig) -> str:
    """The concrete backend (local, docker or external) for ``backend`` and ``config``."""
    if backend not in BACKENDS:
        raise ConfigurationError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    chosen = backend if backend != "auto" else config.backend
    if chosen != "auto":
        return chosen
    from resilience.backends.docker import docker_engine_answers, docker_image_present, images_of

    if not docker_engine_answers():
        return "local"
    missing = [image for image in images_of(config).values() if not docker_image_present(image)]
    if missing:
        print(
            f"resilience: the Docker engine lacks {', '.join(missing)}; using the local backend "
            "(`resilience images build` makes them)",
            file=sys.stderr,
        )
        return "local"
    return "docker"


def make_backend(name: str, config: EnvironmentConfig) -> Backend:
    """Instantiate the backend called ``name`` (imports only that backend's module)."""
    if name == "local":
        from resilience.backends.local import LocalBackend

        return LocalBackend(config)
    if name == "docker":
        from resilience.backends.docker import DockerBackend

        return DockerBackend(config)
    if name == "external":
        from resilience.backends.external import ExternalBackend

        return ExternalBackend(config)
    raise ConfigurationError(f"unknown backend {name!r}")


class Environment:
    """Throwaway PostgreSQL + Redis + Toxiproxy proxies ``postgres`` and ``redis``.

    ``backend``: ``auto`` | ``local`` | ``docker`` | ``external``.
    ``config``: an :class:`EnvironmentConfig`; default
    :meth:`EnvironmentConfig.from_env`. ``backend_impl`` replaces the backend
    object altogether (a seam for tests of code that uses an environment).
    """

    def __init__(
        self,
        backend: str = "auto",
        *,
        config: EnvironmentConfig | None = None,
        backend_impl: Backend | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ConfigurationError(
                f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}"
            )
        self.config = config if config is not None else EnvironmentConfig.from_env()
        self._requested = backend
        self._backend: Backend | None = backend_impl
        self._urls: EnvironmentURLs | None = None
        self._lock = threading.Lock()
        self._previous_sigterm: Any = None
        self._toxiproxy: ToxiproxyClient | None = None

    # -- lifecycle -----------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        """The backend object (resolved on first use)."""
        if self._backend is None:
            name = resolve_backend_name(self._requested, self.config)
            self._backend = make_backend(name, self.config)
        return self._backend

    @property
    def started(self) -> bool:
        return self._urls is not None

    def start(self) -> EnvironmentURLs:
        """Start (once) and return the URLs; on failure everything started is stopped."""
        self._install_teardown_hooks()
        return self._start_backend()

    def _start_backend(self) -> EnvironmentURLs:
        with self._lock:
            if self._urls is None:
                try:
                    self._urls = self.backend.start()
                except BaseException:
                    self._remove_teardown_hooks()
                    raise
            return self._urls

    def stop(self) -> None:
        """Stop everything and remove the temporary files; idempotent."""
        with self._lock:
            try:
                if self._backend is not None:
                    self._backend.stop()
            finally:
                if self._toxiproxy is not None:
                    self._toxiproxy.close()
                self._urls = None
                self._toxiproxy = None
                self._remove_teardown_hooks()

    def server_control(self) -> ServerControl:
        """Process faults on this environment's servers (pause, kill, restart).

        Raises :class:`ServerControlUnavailable` naming why on a backend without them.
        """
        control = getattr(self.backend, "server_control", None)
        if control is None:
            raise ServerControlUnavailable(
                f"the {getattr(self.backend, 'name', 'selected')} backend cannot pause, kill or "
                "restart its servers (they are not this harness's processes); "
                "use the local or docker backend for process faults"
            )
        return cast(ServerControl, control())

    async def start_async(self) -> EnvironmentURLs:
        self._install_teardown_hooks()
        return await asyncio.to_thread(self._start_backend)

    async def stop_async(self) -> None:
        await asyncio.to_thread(self.stop)

    def __enter__(self) -> Environment:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Environment:
        await self.start_async()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_async()

    # -- what it hands out ---------------------------------------------------------

    @property
    def urls(self) -> EnvironmentURLs:
        if self._urls is None:
            raise RuntimeError("the environment is not started; use start() or `with`")
        return self._urls

    @property
    def toxiproxy(self) -> ToxiproxyClient:
        """A typed Toxiproxy API client for this environment's proxy server."""
        if self._toxiproxy is None:
            from resilience.proxy.client import ToxiproxyClient

            self._toxiproxy = ToxiproxyClient(self.urls.toxiproxy_api)
        return self._toxiproxy

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def __repr__(self) -> str:
        state = "started" if self.started else "stopped"
        return f"Environment(backend={self._requested!r}, {state})"

    # -- teardown on SIGTERM and at exit ------------------------------------------

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    def _install_teardown_hooks(self) -> None:
        atexit.register(self.stop)
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)

    def _remove_teardown_hooks(self) -> None:
        atexit.unregister(self.stop)
        if (
            self._previous_sigterm is not None
            and threading.current_thread() is threading.main_thread()
        ):
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None
